//! `call:signal` (SPEC §9): a peer's SDP descriptions and ICE candidates, checked and
//! relayed to their target only, in the order their sender sent them.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::socket::Sid;

use crate::app::App;
use crate::call::refusals::{MAX_SIGNAL_BYTES, SignalRefused};
use crate::rate_limit::SignalLimit;
use crate::refusal::{Refusal, ReportedOnce};

/// A signal accepted for relaying: its target and its data.
type Accepted = (Sid, Map<String, Value>);

/// One socket's signalling, kept in its extensions. Cloning shares it.
#[derive(Clone, Default)]
struct Signalling {
    /// Every attempt takes a token, so a flood of garbage is limited like one of signals.
    limit: SignalLimit,
    /// So that a flood of one kind of bad signal costs one `call:error`, not one each.
    reported: ReportedOnce,
    /// Accepted signals in the order they came, waiting to be relayed.
    outbox: Arc<Mutex<VecDeque<Accepted>>>,
    /// Held while one signal is relayed, so that they go out in the outbox's order: an
    /// async mutex, because a relay awaits the adapter.
    relaying: Arc<tokio::sync::Mutex<()>>,
}

impl Signalling {
    fn outbox(&self) -> MutexGuard<'_, VecDeque<Accepted>> {
        self.outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Relays the oldest signal waiting; each accepted signal is followed by one call.
    async fn relay_next<A: Adapter>(&self, socket: &SocketRef<A>, app: &App) {
        let _turn = self.relaying.lock().await;
        let Some((to, data)) = self.outbox().pop_front() else {
            return;
        };
        if !app.calls.are_peers(socket.id, to).await {
            refuse(socket, app, &self.reported, SignalRefused::NotInRoom);
            return;
        }
        let relayed = Relayed {
            from: socket.id.as_str(),
            data: &data,
        };
        match socket.to(to).emit("call:signal", &relayed).await {
            Ok(()) => {
                app.metrics.call_signals_relayed.inc();
            }
            Err(error) => {
                app.metrics.call_signals_undelivered.inc();
                tracing::debug!(%error, "a call signal could not be relayed");
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct SignalRequest {
    to: String,
    data: Map<String, Value>,
}

#[derive(Serialize)]
struct Relayed<'a> {
    from: &'a str,
    data: &'a Map<String, Value>,
}

/// Checks a signal and queues it as the event is read, then relays it. socketioxide runs
/// each event's handler in a task of its own, so two signals from one socket could overtake
/// each other, and an ICE candidate that arrives before its offer breaks the negotiation.
/// The body of this function runs before that task is spawned, in the order the events
/// came; the tasks then relay in queue order.
pub(super) fn on_signal<A: Adapter>(
    socket: SocketRef<A>,
    State(app): State<App>,
    TryData(request): TryData<SignalRequest>,
) -> impl Future<Output = ()> + Send + 'static {
    let signalling = socket.extensions.get::<Signalling>().unwrap_or_else(|| {
        let made = Signalling::default();
        socket.extensions.insert(made.clone());
        made
    });
    let queued = match check_signal(&socket, &app, &signalling.limit, request) {
        Ok(accepted) => {
            signalling.outbox().push_back(accepted);
            Some(signalling)
        }
        Err(refused) => {
            refuse(&socket, &app, &signalling.reported, refused);
            None
        }
    };
    async move {
        if let Some(signalling) = queued {
            signalling.relay_next(&socket, &app).await;
        }
    }
}

/// Counts a refused signal, and tells its sender if it is the first of its kind.
fn refuse<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App,
    reported: &ReportedOnce,
    refused: SignalRefused,
) {
    app.metrics.call_signal_refused(refused.code());
    reported.report(socket, "call:error", &refused);
}

/// The target of a signal that may be relayed. Every attempt takes a token, valid or not,
/// so a flood of garbage is limited too.
fn check_signal<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App,
    limit: &SignalLimit,
    request: Result<SignalRequest, socketioxide::ParserError>,
) -> Result<Accepted, SignalRefused> {
    if !limit.try_take() {
        return Err(SignalRefused::RateLimited);
    }
    let request = request.map_err(|_| SignalRefused::InvalidPayload)?;
    if json_longer_than(&request.data, MAX_SIGNAL_BYTES) {
        return Err(SignalRefused::TooLarge);
    }
    if app.calls.room_of(socket.id).is_none() {
        return Err(SignalRefused::NotInCall);
    }
    let to = request
        .to
        .parse::<Sid>()
        .map_err(|_| SignalRefused::NotInRoom)?;
    if !app.calls.may_be_peers(socket.id, to) {
        return Err(SignalRefused::NotInRoom);
    }
    Ok((to, request.data))
}

/// Whether `value` as compact JSON is longer than `limit` bytes; stops writing at the limit.
fn json_longer_than(value: &impl Serialize, limit: usize) -> bool {
    struct Budget(usize);
    impl io::Write for Budget {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(bytes.len())
                .ok_or_else(|| io::Error::other("over the limit"))?;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(limit), value).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_signal_is_measured_as_compact_json() {
        let data: Map<String, Value> =
            serde_json::from_value(json!({ "sdp": "x".repeat(100) })).unwrap();
        let length = serde_json::to_vec(&data).unwrap().len();
        assert!(!json_longer_than(&data, length));
        assert!(json_longer_than(&data, length - 1));
    }
}
