//! The store's promises, checked against both backends: every test is an `async fn` over a
//! [`Store`], run once on a fresh embedded store and once on a fresh `redis-server` of its
//! own (Debian's `redis-server`, which the test command installs; listening on a Unix
//! socket in a temporary folder, stopped when the test ends).
//!
//! Times are real (`now_ms()` plus offsets) because Redis expires keys by its own clock.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::{ClipFiles, RedisStore, Store};
use crate::clip::{Author, Clip, Rendition, now_ms};
use crate::cluster::health::Health;
use crate::identity::UserId;
use crate::metrics::CommitMetrics;
use crate::moderation::Ban;

/// Stand-ins for a clip's files: the store keeps bytes, whatever they are.
pub(super) const FILES: ClipFiles<'static> = ClipFiles {
    gif: b"GIF89a",
    video: b"....ftyp",
    poster: b"JPEG",
};

/// A clip made at `created_at` that lives `ttl_ms`.
pub(super) fn clip(created_at: u64, ttl_ms: u64) -> Clip {
    let key = Uuid::now_v7();
    Clip {
        key,
        id: None,
        author: Author {
            id: UserId::parse("amberotteramberotter").unwrap(),
            name: "amber-otter".into(),
        },
        message: "hi".into(),
        clip: Clip::url(key),
        video: Some(Clip::video_url(key)),
        poster: Some(Clip::poster_url(key)),
        width: 200,
        height: 200,
        frames: 10,
        delay_ms: 200,
        bytes: 3,
        video_bytes: Some(4),
        created_at,
        expires_at: created_at + ttl_ms,
    }
}

pub(super) fn user(letter: char) -> UserId {
    UserId::parse(&letter.to_string().repeat(20)).unwrap()
}

async fn keys(store: &Store, limit: usize, now_ms: u64) -> Vec<Uuid> {
    let recent = store.recent(limit, now_ms).await.unwrap();
    recent.iter().map(|clip| clip.key).collect()
}

/// A `redis-server` of the test's own, killed on drop (a test that panics included). It
/// listens on a Unix socket in its own folder, not on a port: a free port found first and
/// taken later could be taken by another test's server in between.
pub(crate) struct TestRedis {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestRedis {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", ""])
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs Debian's)");
        // Held before the wait, so that a server that never answers is stopped as well.
        let redis = Self {
            child,
            socket,
            _dir: dir,
        };
        let started = Instant::now();
        while UnixStream::connect(&redis.socket).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        redis
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub async fn store(&self) -> Store {
        let client = redis::Client::open(self.url()).unwrap();
        let connection = ConnectionManager::new(client).await.unwrap();
        let health = Health::new(prometheus_client::metrics::gauge::Gauge::default());
        Store::Redis(RedisStore::new(connection, health))
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs each named check against an embedded store and against a Redis store.
macro_rules! both_backends {
    ($($check:ident),* $(,)?) => {
        mod on_embedded {
            $(
                #[tokio::test]
                async fn $check() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::Store::open(dir.path(), super::CommitMetrics::default()).unwrap();
                    super::$check(store).await;
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test]
                async fn $check() {
                    let redis = super::TestRedis::start();
                    super::$check(redis.store().await).await;
                }
            )*
        }
    };
}

both_backends!(
    recent_is_the_newest_unexpired_oldest_first,
    expired_clips_are_never_returned_even_before_the_sweep,
    purge_removes_exactly_what_is_due,
    inserting_a_clip_twice_stores_it_once,
    removal_takes_the_clip_its_gif_and_its_reports,
    reports_count_once_per_user,
    bans_are_kept_until_lifted,
    clips_by_lists_one_authors_unexpired_clips,
);

async fn recent_is_the_newest_unexpired_oldest_first(store: Store) {
    let now = now_ms();
    let mut inserted = Vec::new();
    for _ in 0..5 {
        let clip = clip(now, 60_000);
        store.insert(&clip, FILES).await.unwrap();
        inserted.push(clip.key);
    }
    assert_eq!(keys(&store, 3, now + 1_000).await, inserted[2..]);
    assert_eq!(keys(&store, 10, now + 1_000).await, inserted);
}

async fn expired_clips_are_never_returned_even_before_the_sweep(store: Store) {
    let now = now_ms();
    let short = clip(now, 1_000);
    let long = clip(now, 60_000);
    store.insert(&short, FILES).await.unwrap();
    store.insert(&long, FILES).await.unwrap();

    // A second later by the reader's clock, before either the sweep or Redis itself
    // could have removed anything.
    assert_eq!(keys(&store, 10, now + 2_000).await, [long.key]);
    assert!(
        store
            .file(short.key, Rendition::Gif, now + 2_000)
            .await
            .unwrap()
            .is_none()
    );
    let (clip, gif) = store
        .file(long.key, Rendition::Gif, now + 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((clip, gif), (long, FILES.gif.to_vec()));
    assert_eq!(
        store.len(),
        2,
        "reads must not delete; that is the sweep's job"
    );
}

async fn purge_removes_exactly_what_is_due(store: Store) {
    let now = now_ms();
    let short = clip(now, 1_000);
    let long = clip(now, 60_000);
    store.insert(&short, FILES).await.unwrap();
    store.insert(&long, FILES).await.unwrap();

    assert_eq!(store.purge_expired(now + 2_000).await.unwrap(), 1);
    assert_eq!(store.len(), 1);
    assert!(
        store
            .file(short.key, Rendition::Gif, now)
            .await
            .unwrap()
            .is_none(),
        "gone, even for an earlier clock"
    );
    assert!(
        store
            .file(long.key, Rendition::Gif, now)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.purge_expired(now + 2_000).await.unwrap(), 0);
}

async fn inserting_a_clip_twice_stores_it_once(store: Store) {
    let now = now_ms();
    let stored = clip(now, 60_000);
    store.insert(&stored, FILES).await.unwrap();
    store.insert(&stored, FILES).await.unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(keys(&store, 10, now).await, [stored.key]);
}

async fn removal_takes_the_clip_its_gif_and_its_reports(store: Store) {
    let now = now_ms();
    let (gone, kept) = (clip(now, 60_000), clip(now, 60_000));
    store.insert(&gone, FILES).await.unwrap();
    store.insert(&kept, FILES).await.unwrap();
    assert!(store.report(gone.key, user('a'), now).await.unwrap());

    assert_eq!(
        store.remove(vec![gone.key, Uuid::now_v7()]).await.unwrap(),
        [gone.key]
    );
    assert_eq!(keys(&store, 10, now).await, [kept.key]);
    assert!(
        store
            .file(gone.key, Rendition::Gif, now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store.reports(now).await.unwrap().is_empty(),
        "its reports went with it"
    );
    assert!(
        !store.report(gone.key, user('b'), now).await.unwrap(),
        "nothing left to report"
    );
    assert!(
        store.remove(vec![gone.key]).await.unwrap().is_empty(),
        "a second removal finds nothing"
    );
}

async fn reports_count_once_per_user(store: Store) {
    let now = now_ms();
    let (once, twice, expired) = (clip(now, 60_000), clip(now, 60_000), clip(now, 500));
    for stored in [&once, &twice, &expired] {
        store.insert(stored, FILES).await.unwrap();
    }
    for (key, reader) in [
        (once.key, 'a'),
        (twice.key, 'a'),
        (twice.key, 'b'),
        (twice.key, 'b'),
        (expired.key, 'a'),
    ] {
        assert!(store.report(key, user(reader), now).await.unwrap());
    }
    assert!(
        !store.report(Uuid::now_v7(), user('a'), now).await.unwrap(),
        "unknown"
    );
    assert!(
        !store
            .report(expired.key, user('b'), now + 1_000)
            .await
            .unwrap(),
        "expired"
    );

    let listed: Vec<_> = store
        .reports(now + 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|reported| (reported.key, reported.reports))
        .collect();
    assert_eq!(
        listed,
        [(twice.key, 2), (once.key, 1)],
        "most reported first, expired left out"
    );
}

async fn bans_are_kept_until_lifted(store: Store) {
    // A ban by address keeps the address's keyed hash, and only that.
    let address = crate::address::key::AddressKey::parse("0123456789abcdef0123456789abcdef")
        .expect("a key as the server spells them");
    let ban = |letter, until| Ban {
        user: user(letter),
        until,
        reason: Some("spam".into()),
        addresses: vec![address.clone()],
    };
    store.save_ban(&ban('a', 5_000)).await.unwrap();
    store.save_ban(&ban('a', 6_000)).await.unwrap();
    assert!(!store.remove_ban(user('c')).await.unwrap());
    assert_eq!(
        store.bans().await.unwrap(),
        [ban('a', 6_000)],
        "the later ban replaced the first"
    );
    assert!(store.remove_ban(user('a')).await.unwrap());
    assert!(store.bans().await.unwrap().is_empty());
}

async fn clips_by_lists_one_authors_unexpired_clips(store: Store) {
    let now = now_ms();
    let mut theirs = clip(now, 60_000);
    theirs.author.id = user('t');
    let mut old = clip(now, 100);
    old.author.id = user('t');
    let someone_else = clip(now, 60_000);
    for stored in [&theirs, &old, &someone_else] {
        store.insert(stored, FILES).await.unwrap();
    }
    assert_eq!(
        store.clips_by(user('t'), now + 1_000).await.unwrap(),
        [theirs.key]
    );
}

/// Redis's own expiry: a clip's records are gone from Redis once its time is up, even
/// with no sweep at all, and the sweep then cleans the sorted sets.
#[tokio::test]
async fn redis_drops_an_expired_clip_by_itself() {
    let redis = TestRedis::start();
    let store = redis.store().await;
    let short = clip(now_ms(), 300);
    store.insert(&short, FILES).await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let records = [
        format!("loopchat:clip:{}", short.key),
        format!("loopchat:gif:{}", short.key),
    ];
    let count = |connection: &mut redis::aio::MultiplexedConnection| {
        let mut connection = connection.clone();
        let records = records.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(&records)
                .query_async::<usize>(&mut connection)
                .await
                .unwrap()
        }
    };
    assert_eq!(count(&mut connection).await, 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        count(&mut connection).await,
        0,
        "Redis expired both records"
    );
    assert_eq!(store.purge_expired(now_ms()).await.unwrap(), 1);
    let left: usize = redis::cmd("ZCARD")
        .arg("loopchat:recent")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// A Redis that has gone away answers `Unavailable` quickly, and nothing was stored.
#[tokio::test]
async fn a_stopped_redis_answers_unavailable() {
    let redis = TestRedis::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)));
    let connection = ConnectionManager::new_with_config(client, config)
        .await
        .unwrap();
    let store = Store::Redis(RedisStore::new(
        connection,
        Health::new(prometheus_client::metrics::gauge::Gauge::default()),
    ));
    drop(redis);
    let refused = store.insert(&clip(now_ms(), 60_000), FILES).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(super::StoreError::is_unavailable),
        "{:?}",
        refused.err()
    );
    // Sent without an answer: for all this node knows, Redis may have done it.
    assert!(refused.is_err_and(|error| error.may_have_written()));
}

/// While the heartbeat says Redis is away nothing is sent, and the error says so.
#[tokio::test]
async fn nothing_is_sent_while_the_heartbeat_fails() {
    let redis = TestRedis::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let connection = ConnectionManager::new(client).await.unwrap();
    let health = Health::new(prometheus_client::metrics::gauge::Gauge::default());
    health.fail_for_tests();
    let store = Store::Redis(RedisStore::new(connection.clone(), health));
    let refused = store.insert(&clip(now_ms(), 60_000), FILES).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|error| error.is_unavailable() && !error.may_have_written()),
        "{:?}",
        refused.err()
    );
    let stored: usize = redis::cmd("DBSIZE")
        .query_async(&mut connection.clone())
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing reached Redis");
}
