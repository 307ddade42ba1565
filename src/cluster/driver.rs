//! socketioxide-redis's pub/sub [`Driver`] on a Redis connection that survives a Redis
//! restart.
//!
//! The stock driver of socketioxide-redis 0.4.4 holds one bare `MultiplexedConnection`:
//! once Redis restarts, every broadcast fails with "broken pipe" forever, and because the
//! adapter publishes before it delivers locally, the sending node's own clients get
//! nothing either (SCALE.md). This one differs in three ways:
//!
//! - it sits on `redis::aio::ConnectionManager`, which reconnects, and re-subscribes every
//!   channel after a reconnect (`set_automatic_resubscription`);
//! - short timeouts and few retries, so that no command waits long while Redis is away;
//! - a publish that cannot reach Redis is counted and dropped instead of failing, so the
//!   adapter goes on to deliver to this node's own sockets. Cross-node delivery of that one
//!   packet is lost, which is what an outage means; nothing waits on it.
//!
//! Whether Redis is reachable is [`Health`]'s business (a heartbeat), not the driver's.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use prometheus_client::metrics::counter::Counter;
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

use super::Health;

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// The adapter's pub/sub on one reconnecting connection. Clones share it.
#[derive(Clone)]
pub struct PubSub {
    connection: ConnectionManager,
    /// Channel → the adapter's stream for it; filled by `subscribe`, read by the push
    /// sender that the connection calls for every message.
    handlers: Handlers,
    health: Health,
    /// Publishes dropped because Redis could not be reached.
    dropped: Counter,
}

impl PubSub {
    /// The handlers for a connection made with [`PubSub::push_sender`]'s sender.
    pub fn new(
        connection: ConnectionManager,
        handlers: Handlers,
        health: Health,
        dropped: Counter,
    ) -> Self {
        Self {
            connection,
            handlers,
            health,
            dropped,
        }
    }

    /// The handler map and the push sender that feeds it, to give the connection when it
    /// is made (pushes arrive before the driver exists otherwise).
    pub fn push_sender() -> (
        Handlers,
        impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static,
    ) {
        let handlers: Handlers = Arc::default();
        let shared = handlers.clone();
        let sender = move |push: PushInfo| {
            deliver(push, &shared);
            Ok(())
        };
        (handlers, sender)
    }
}

/// Hands a pushed pub/sub message to the stream of its channel. Subscription
/// confirmations and disconnection notices are not messages and are ignored.
fn deliver(push: PushInfo, handlers: &Handlers) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(message)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(message)) = (
        String::from_redis_value(channel),
        Vec::<u8>::from_redis_value(message),
    ) else {
        tracing::warn!("a pub/sub message that is not (channel, bytes); dropped");
        return;
    };
    let handlers = handlers
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(stream) = handlers.get(&channel) {
        // A full stream means the adapter is far behind; waiting here would stall the
        // connection that every other command shares.
        if stream.try_send((channel, message)).is_err() {
            tracing::warn!("a pub/sub stream is full; a cross-node packet was dropped");
        }
    }
}

/// A Redis error, in the shape the adapter wants.
#[derive(Debug)]
pub struct DriverError(redis::RedisError);

impl fmt::Display for DriverError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

impl std::error::Error for DriverError {}

impl From<redis::RedisError> for DriverError {
    fn from(error: redis::RedisError) -> Self {
        Self(error)
    }
}

impl Driver for PubSub {
    type Error = DriverError;

    async fn publish(&self, channel: String, message: Vec<u8>) -> Result<(), Self::Error> {
        if !self.health.is_up() {
            self.dropped.inc();
            return Ok(());
        }
        let published: redis::RedisResult<redis::Value> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(message)
            .query_async(&mut self.connection.clone())
            .await;
        if let Err(error) = published {
            self.dropped.inc();
            tracing::debug!(%error, "publishing to the other nodes failed; delivering locally only");
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        channel: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (sender, receiver) = mpsc::channel(size);
        self.handlers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(channel.clone(), sender);
        if let Err(error) = self.connection.clone().subscribe(&channel).await {
            self.handlers
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&channel);
            return Err(error.into());
        }
        Ok(MessageStream::new(receiver))
    }

    async fn unsubscribe(&self, channel: String) -> Result<(), Self::Error> {
        self.handlers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&channel);
        self.connection.clone().unsubscribe(&channel).await?;
        Ok(())
    }

    async fn num_serv(&self, channel: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: PushKind, channel: &str, message: &[u8]) -> PushInfo {
        PushInfo {
            kind,
            data: vec![
                redis::Value::BulkString(channel.into()),
                redis::Value::BulkString(message.to_vec()),
            ],
        }
    }

    #[test]
    fn messages_reach_the_stream_of_their_channel_only() {
        let (handlers, sender) = PubSub::push_sender();
        let (to_a, mut a) = mpsc::channel(4);
        let (to_b, mut b) = mpsc::channel(4);
        handlers.write().unwrap().insert("a".into(), to_a);
        handlers.write().unwrap().insert("b".into(), to_b);

        sender(push(PushKind::Message, "a", b"hello")).unwrap();
        sender(push(PushKind::Subscribe, "b", b"1")).unwrap();
        sender(push(PushKind::Message, "nobody", b"lost")).unwrap();

        assert_eq!(a.try_recv().unwrap(), ("a".to_owned(), b"hello".to_vec()));
        assert!(a.try_recv().is_err());
        assert!(
            b.try_recv().is_err(),
            "a subscription notice is not a message"
        );
    }
}
