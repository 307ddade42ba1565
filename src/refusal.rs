//! The one shape of "no" a Socket.IO client is told: a stable code to key on and a
//! sentence a person can act on (SPEC §3, §5, §9). Chat, the live room and the call rooms
//! each have their own reasons ([`crate::error::ClipError`], the live room's `Dropped`, the
//! call room's `JoinRefused` and `SignalRefused`); they all answer through the helpers here,
//! so an ack and an error event look the same whichever feature sends them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};

/// A reason for refusing what a client asked for.
pub trait Refusal {
    /// The stable, machine-readable code: clients and metrics key on it.
    fn code(&self) -> &'static str;
    /// What a person reads. Never an internal cause: those are logged, not sent.
    fn message(&self) -> String;

    /// The `{ code, message }` object a client is sent.
    fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.message(),
        }
    }
}

/// What a client is told about a refusal.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

/// Answers an acknowledged event: `{ ok: true, ..fields }`, or `{ ok: false, error }` with
/// the refusal's `{ code, message }`. `fields` is an object (or `null` for none).
pub fn acknowledge<A: Adapter>(ack: AckSender<A>, answer: Result<Value, ErrorBody>) {
    let reply = match answer {
        Ok(Value::Object(mut fields)) => {
            fields.insert("ok".into(), Value::Bool(true));
            Value::Object(fields)
        }
        Ok(_) => json!({ "ok": true }),
        Err(error) => json!({ "ok": false, "error": error }),
    };
    // The client went away before its answer: nothing left to tell.
    if let Err(error) = ack.send(&reply) {
        tracing::debug!(%error, "could not answer an acknowledged event");
    }
}

/// Which kinds of refusal a socket has already been told about. Cloning shares them.
#[derive(Clone, Default)]
pub struct ReportedOnce(Arc<Mutex<HashSet<&'static str>>>);

impl ReportedOnce {
    /// True the first time a refusal of this kind (its code) is seen.
    pub fn first_time(&self, refusal: &impl Refusal) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(refusal.code())
    }

    /// Emits `refusal` as `event` to `socket` the first time its kind happens there: a
    /// flood of one kind of bad frame or signal costs one error event, not one each.
    pub fn report<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        event: &'static str,
        refusal: &impl Refusal,
    ) {
        if self.first_time(refusal)
            && let Err(error) = socket.emit(event, &refusal.body())
        {
            tracing::debug!(%error, socket = %socket.id, event, "could not report a refusal");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Kind(&'static str);

    impl Refusal for Kind {
        fn code(&self) -> &'static str {
            self.0
        }
        fn message(&self) -> String {
            format!("refused: {}", self.0)
        }
    }

    #[test]
    fn each_kind_is_reported_once() {
        let reported = ReportedOnce::default();
        assert!(reported.first_time(&Kind("rate_limited")));
        assert!(!reported.first_time(&Kind("rate_limited")));
        assert!(reported.first_time(&Kind("bad_frame")));
        let shared = reported.clone();
        assert!(
            !shared.first_time(&Kind("bad_frame")),
            "clones share what was told"
        );
    }

    #[test]
    fn a_body_is_the_code_and_the_message() {
        let body = serde_json::to_value(Kind("busy").body()).unwrap();
        assert_eq!(body, json!({ "code": "busy", "message": "refused: busy" }));
    }
}
