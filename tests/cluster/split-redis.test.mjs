// Cluster mode with the clips in a Redis of their own (`--store-redis-url`, SPEC §8): each of
// the two Redis stopped while the other runs, read from /metrics (`loopchat_redis_up`,
// `loopchat_store_redis_up`, `loopchat_redis_dropped_publishes_total`) and from what clients
// see. faults.test.mjs stops the one Redis of a cluster that shares it; here they differ.
//
// The deadlines (an answer within 5 s, recovery within 10 s) are the SPEC's: they are how
// long the tests wait, never measured.
import assert from 'node:assert/strict';
import {
  eventually, expectNoEvent, loadFrames, metricsText, metricValue, replayKeys, sendClip,
  sendGoodClip, WAIT_MS,
} from '../e2e/helpers.mjs';
import { clipKeysInRedis, clusterTest, startRedis } from './services.mjs';

const FRAMES = loadFrames();
/** SPEC §8: a clip is answered `unavailable` within this long while Redis is down. */
const UNAVAILABLE_WITHIN_MS = 5000;
/** SPEC §8: every node recovers within this long of Redis being back. */
const RECOVERY_WITHIN_MS = 10_000;

/** The cluster-state samples of one node's /metrics. */
async function state(url) {
  const text = await metricsText(url);
  return {
    redis_up: metricValue(text, 'loopchat_redis_up'),
    store_redis_up: metricValue(text, 'loopchat_store_redis_up'),
    dropped: metricValue(text, 'loopchat_redis_dropped_publishes_total'),
  };
}

async function healthz(url) {
  return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(UNAVAILABLE_WITHIN_MS) })).status;
}

/** Two nodes, the broadcast Redis of startCluster and a store Redis of their own. */
async function splitCluster(h) {
  const store = await startRedis();
  h.cleanups.push(() => store.cleanup());
  h.servers.push({ url: `store redis ${store.url}`, output: store.output });
  const cluster = await h.cluster({ nginx: false, args: ['--store-redis-url', store.url, '--replay', '50'] });
  for (const node of cluster.nodes) {
    assert.deepEqual(await state(node.url), { redis_up: 1, store_redis_up: 1, dropped: 0 }, `${node.url} before anything stops`);
  }
  return { store, cluster };
}

/** `client` joins the call room `room`; resolves with the reply, which must be ok. */
async function joinCall(client, room) {
  const reply = await client.socket.timeout(WAIT_MS).emitWithAck('call:join', { room });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return reply;
}

clusterTest('the store Redis down, the broadcast Redis up: store_redis_up 0 alone, clips refused unavailable and not stored, the rest crosses nodes; back: clips flow', null, async (t, h) => {
  const { store, cluster } = await splitCluster(h);
  const { redis, nodes: [a, b] } = cluster;
  const sender = await h.client(a.url, { name: 'sender' });
  const onB = await h.client(b.url, { name: 'on-b' });
  const first = await sendGoodClip(sender.socket, { id: 'first', message: 'before', frames: FRAMES.slice(0, 2) });
  await eventually(() => onB.received.message.some((clip) => clip.key === first.key), 'the first clip on node B');
  assert.deepEqual([...await clipKeysInRedis(store, cluster.startedAt)], [first.key], 'the clip is in the store Redis');
  assert.deepEqual([...await clipKeysInRedis(redis, cluster.startedAt)], [], 'and not in the broadcast Redis');

  await store.stop();
  for (const node of [a, b]) {
    await eventually(async () => (await state(node.url)).store_redis_up === 0, `loopchat_store_redis_up 0 on ${node.url}`);
    const now = await state(node.url);
    assert.equal(now.redis_up, 1, `${node.url}: loopchat_redis_up stays 1, the broadcast Redis runs`);
    assert.equal(await healthz(node.url), 503, `${node.url}: /healthz 503, the store cannot be reached`);
  }

  // A clip is refused unavailable, in time, and goes nowhere.
  const refused = await sendClip(sender.socket, { id: 'lost', message: 'during', frames: FRAMES.slice(0, 3) }, UNAVAILABLE_WITHIN_MS);
  assert.equal(refused.reply.ok, false, JSON.stringify(refused.reply));
  assert.equal(refused.reply.error.code, 'unavailable');
  assert.deepEqual(refused.event, { id: 'lost', code: 'unavailable', message: refused.reply.error.message });
  assert.equal(sender.socket.connected, true);
  // What needs only the broadcast Redis still crosses nodes: a call join on A reaches a
  // caller on B. It is also the marker for "no clip reached B": sent after the refusal,
  // through the same Redis as a broadcast clip would have gone.
  await joinCall(onB, 'across');
  const caller = await h.client(a.url, { name: 'caller' });
  await joinCall(caller, 'across');
  await eventually(() => (onB.received['call:joined'] ?? []).some((joiner) => joiner.id === caller.welcome.you.conn), 'call:joined from node A at node B');
  assert.deepEqual(onB.received.message.map((clip) => clip.id), ['first'], 'the refused clip reached nobody on node B');
  for (const node of [a, b]) assert.equal((await state(node.url)).dropped, 0, `${node.url}: no broadcast was dropped`);

  // Back: every node recovers by itself; nothing of the refused clip was kept.
  await store.start();
  for (const node of [a, b]) {
    await eventually(async () => (await state(node.url)).store_redis_up === 1, `loopchat_store_redis_up 1 on ${node.url}`, RECOVERY_WITHIN_MS);
    await eventually(async () => (await healthz(node.url)) === 200, `/healthz 200 on ${node.url}`, RECOVERY_WITHIN_MS);
  }
  assert.deepEqual([...await clipKeysInRedis(store, cluster.startedAt)], [first.key], 'the store holds the first clip only');
  const second = await sendGoodClip(sender.socket, { id: 'second', message: 'after', frames: FRAMES.slice(0, 2) });
  await eventually(() => onB.received.message.some((clip) => clip.key === second.key), 'the clip after recovery on node B');
  assert.deepEqual(onB.received.message.map((clip) => clip.id), ['first', 'second']);
  assert.deepEqual([...await clipKeysInRedis(store, cluster.startedAt)].sort(), [first.key, second.key].sort());
  assert.deepEqual([...await clipKeysInRedis(redis, cluster.startedAt)], [], 'never any clip in the broadcast Redis');
  for (const node of [a, b]) assert.deepEqual(await replayKeys(node.url), [first.key, second.key], `${node.url}'s replay`);
});

clusterTest('the broadcast Redis down, the store Redis up: redis_up 0 alone, a clip is stored and reaches its own node only, counted as a dropped publish; back: no more drops', null, async (t, h) => {
  const { store, cluster } = await splitCluster(h);
  const { redis, nodes: [a, b] } = cluster;
  const sender = await h.client(a.url, { name: 'sender' });
  const onA = await h.client(a.url, { name: 'on-a' });
  const onB = await h.client(b.url, { name: 'on-b' });

  await redis.stop();
  for (const node of [a, b]) {
    await eventually(async () => (await state(node.url)).redis_up === 0, `loopchat_redis_up 0 on ${node.url}`);
    assert.equal((await state(node.url)).store_redis_up, 1, `${node.url}: loopchat_store_redis_up stays 1, the store Redis runs`);
  }
  // Nothing was broadcast since the outage began (presence is sent by each node to its own
  // sockets, not through Redis), so the counter starts from here.
  const droppedBefore = (await state(a.url)).dropped;
  t.diagnostic(`publishes dropped on node A before the clip: ${droppedBefore}`);

  // The store answers, so the clip is stored and acked; its broadcast reaches node A's
  // sockets, and the copy for the other nodes is dropped and counted.
  const clip = await sendGoodClip(sender.socket, { id: 'local', message: 'one node only', frames: FRAMES.slice(0, 2) });
  await eventually(() => onA.received.message.some((got) => got.key === clip.key), 'the clip at the other socket of node A');
  assert.equal((await state(a.url)).dropped, droppedBefore + 1, 'one publish dropped: the clip\'s broadcast');
  assert.equal((await state(b.url)).dropped, 0, 'node B published nothing');
  assert.deepEqual([...await clipKeysInRedis(store, cluster.startedAt)], [clip.key], 'the clip is stored');

  // Back: cross-node delivery returns; the next clip is published, not dropped.
  await redis.start();
  for (const node of [a, b]) {
    await eventually(async () => (await state(node.url)).redis_up === 1, `loopchat_redis_up 1 on ${node.url}`, RECOVERY_WITHIN_MS);
  }
  const deadline = Date.now() + RECOVERY_WITHIN_MS;
  let next;
  // The adapter's subscriptions on node B come back within the SPEC's 10 s, maybe after
  // redis_up: clips are sent until one arrives there (each is stored, none lost).
  for (let n = 0; !next; n += 1) {
    const sent = await sendGoodClip(sender.socket, { id: `after-${n}`, message: 'both nodes again', frames: FRAMES.slice(0, 2) });
    try {
      await eventually(() => onB.received.message.some((got) => got.key === sent.key), 'a clip at node B', 1000);
      next = sent;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no clip from node A reached node B within ${RECOVERY_WITHIN_MS} ms of the broadcast Redis's restart`);
    }
  }
  assert.ok(!onB.received.message.some((got) => got.key === clip.key), 'the clip sent during the outage never reached node B');
  await expectNoEvent(onB.socket, 'message', undefined, (got) => got.key === clip.key);
  assert.equal((await state(a.url)).dropped, droppedBefore + 1, 'nothing dropped once Redis is back');
  assert.ok((await replayKeys(b.url)).includes(clip.key), 'node B replays the clip from the store, though its broadcast was dropped');
});
