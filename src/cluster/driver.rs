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
//! One thing the connection manager does not promise is kept here: redis-rs 1.8 sends the
//! subscriptions again on a reconnect but ignores it if that fails (a Redis still loading
//! its data, an answer too slow), and the node would look healthy and never hear from the
//! other nodes again; [`PubSub::keep_subscribed`] checks and subscribes again.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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

/// How often [`PubSub::keep_subscribed`] compares the connection's subscriptions with the
/// adapter's channels.
const SUBSCRIPTION_CHECK: Duration = Duration::from_secs(1);

impl PubSub {
    /// Subscribes to every channel the adapter follows again whenever the connection has
    /// fewer subscriptions than that (`CLIENT INFO`'s `sub=`), until `stop`. Subscribing
    /// to a channel twice changes nothing, so a check that races a new subscription costs
    /// one redundant command.
    pub async fn keep_subscribed(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(SUBSCRIPTION_CHECK) => {}
            }
            if self.health.is_up() {
                self.subscribe_again_if_lost().await;
            }
        }
    }

    async fn subscribe_again_if_lost(&self) {
        let channels: Vec<String> = self
            .handlers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .keys()
            .cloned()
            .collect();
        if channels.is_empty() {
            return;
        }
        let info: redis::RedisResult<String> = redis::cmd("CLIENT")
            .arg("INFO")
            .query_async(&mut self.connection.clone())
            .await;
        let subscribed = match info.map(|info| subscriptions_in(&info)) {
            Ok(Some(subscribed)) => subscribed,
            Ok(None) => {
                tracing::warn!("CLIENT INFO says nothing of subscriptions; cannot check them");
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "could not check the pub/sub subscriptions");
                return;
            }
        };
        if subscribed >= channels.len() {
            return;
        }
        tracing::warn!(
            subscribed,
            wanted = channels.len(),
            "pub/sub subscriptions were lost with a reconnect; subscribing again"
        );
        for channel in channels {
            if let Err(error) = self.connection.clone().subscribe(&channel).await {
                tracing::debug!(%error, "subscribing again failed; the next check tries again");
            }
        }
    }
}

/// The number of channels a connection is subscribed to, from its `CLIENT INFO` line
/// (`id=7 addr=… sub=3 psub=0 …`).
fn subscriptions_in(client_info: &str) -> Option<usize> {
    client_info
        .split_whitespace()
        .find_map(|field| field.strip_prefix("sub="))
        .and_then(|count| count.parse().ok())
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
    use crate::store::TestRedis;

    #[test]
    fn the_subscription_count_is_read_from_client_info() {
        let info = "id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=8 name= db=0 sub=3 psub=0 ssub=0 multi=-1";
        assert_eq!(subscriptions_in(info), Some(3));
        assert_eq!(subscriptions_in("id=7 addr=127.0.0.1:5000"), None);
    }

    /// A connection that has lost its subscriptions behind redis-rs's back (here by an
    /// UNSUBSCRIBE it did not send through the manager) is subscribed again, and messages
    /// reach the adapter's stream once more.
    #[tokio::test]
    async fn lost_subscriptions_are_made_again() {
        let redis = TestRedis::start();
        let (handlers, push_sender) = PubSub::push_sender();
        let client = redis::Client::open(format!("{}?protocol=resp3", redis.url())).unwrap();
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_push_sender(push_sender)
            .set_automatic_resubscription();
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .unwrap();
        let pubsub = PubSub::new(
            connection.clone(),
            handlers,
            Health::new(prometheus_client::metrics::gauge::Gauge::default()),
            Counter::default(),
        );
        let mut stream = pubsub.subscribe("loopchat:test".into(), 8).await.unwrap();
        let other = client.get_multiplexed_async_connection().await.unwrap();
        let publish = |message: &'static str| {
            let mut other = other.clone();
            async move {
                redis::cmd("PUBLISH")
                    .arg("loopchat:test")
                    .arg(message)
                    .query_async::<usize>(&mut other)
                    .await
                    .unwrap()
            }
        };

        redis::cmd("UNSUBSCRIBE")
            .arg("loopchat:test")
            .exec_async(&mut connection.clone())
            .await
            .unwrap();
        assert_eq!(publish("lost").await, 0, "nobody hears the channel now");
        pubsub.subscribe_again_if_lost().await;
        assert_eq!(publish("heard").await, 1);
        use futures_util::StreamExt;
        let (channel, message) = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (channel.as_str(), message.as_slice()),
            ("loopchat:test", &b"heard"[..])
        );
    }

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
