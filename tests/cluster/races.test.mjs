// The join/disconnect race of tests/e2e/races.test.mjs, made to happen every time. In
// cluster mode a call join asks Redis who is in the call (src/call/redis.rs) before it
// puts the socket in the call on its node (src/call/rooms.rs `join`), and the disconnect of
// a socket in no call needs no Redis at all. So with the cluster's Redis paused (SIGSTOP),
// a socket that sends `call:join` and closes has its disconnect handled (the test waits for
// it: the node's connection count drops) while its join waits for Redis; once Redis is let
// go (SIGCONT), the join registers a socket whose disconnect clean-up has already run: the
// interleaving that left sockets in their call for good before the join checked
// `socket.connected()` afterwards. (The disconnect's own leave now waits for the join,
// src/events/membership.rs; its connection count drops before that, which is what the test
// waits for.) The clips' store is a Redis of its own that keeps running,
// so that /metrics (which counts the stored clips) answers meanwhile.
//
// One thing is not held: the node stops waiting for Redis after 1 s (its response timeout)
// and joins with its own calls only. The pause lasts from just before the join is sent until
// the disconnect was seen handled, normally milliseconds; an attempt whose join ran into the
// timeout, or was in the call before the disconnect was seen, is not counted as held.
import assert from 'node:assert/strict';
import { connect, eventually, metricsText, metricValue, WAIT_MS } from '../e2e/helpers.mjs';
import { clusterTest, startRedis } from './services.mjs';

/** Held attempts wanted… */
const HELD = 3;
/** …out of at most this many. */
const ATTEMPTS = 10;
const TIMED_OUT = /the other nodes' calls are unknown/;

async function census(url) {
  const text = await metricsText(url);
  return { connections: metricValue(text, 'loopchat_connections'), participants: metricValue(text, 'loopchat_call_participants') };
}

clusterTest('a call join held at Redis until its socket\'s disconnect was handled still leaves nobody behind (every time)', null, async (t, h) => {
  const store = await startRedis();
  h.cleanups.push(() => store.cleanup());
  const cluster = await h.cluster({ nodes: 1, nginx: false, args: ['--store-redis-url', store.url] });
  const { redis, nodes: [node] } = cluster;
  const observer = await h.client(node.url, { name: 'observer' });
  assert.equal((await observer.socket.timeout(WAIT_MS).emitWithAck('call:join', { room: 'held' })).ok, true);
  const story = (id) => observer.events
    .filter(({ event, args }) => (event === 'call:joined' || event === 'call:left') && args[0].id === id)
    .map(({ event }) => event).join(' ');

  let held = 0;
  let attempts = 0;
  while (held < HELD && attempts < ATTEMPTS) {
    attempts += 1;
    const brief = await connect(node.url, { name: `brief-${attempts}` }).ready;
    const id = brief.welcome.you.conn;
    const before = await census(node.url);
    const logBefore = node.output().length;
    let during;
    let heardDuring;
    process.kill(redis.pid(), 'SIGSTOP');
    try {
      brief.socket.emit('call:join', { room: 'held' });
      brief.socket.close();
      await eventually(async () => (await census(node.url)).connections === before.connections - 1, 'the disconnect handled');
      during = await census(node.url);
      heardDuring = story(id);
    } finally {
      process.kill(redis.pid(), 'SIGCONT');
    }

    // The join goes on: it announces the socket, finds it gone and takes it out again.
    await eventually(() => story(id) === 'call:joined call:left' || assert.fail(`heard: ${story(id) || 'nothing'}`),
      `call:joined then call:left for ${id} (one left in the call is announced and never gone)`);
    assert.deepEqual(await census(node.url), { connections: before.connections - 1, participants: 1 }, `attempt ${attempts}: the observer alone is in a call`);
    assert.deepEqual((await redis.cli('HKEYS', 'loopchat:call:held')).split('\n'), [observer.welcome.you.conn], `attempt ${attempts}: Redis lists the observer alone in the call`);
    const timedOut = TIMED_OUT.test(node.output().slice(logBefore));
    if (during.participants === before.participants && heardDuring === '' && !timedOut) held += 1;
    else t.diagnostic(`attempt ${attempts} not held: ${timedOut ? 'the join timed out waiting for Redis' : `the join was in the call before the disconnect was seen (${heardDuring})`}`);
  }
  t.diagnostic(`${held} of ${attempts} attempts held the join until after the disconnect`);
  assert.ok(held >= 1, `no attempt held the join at Redis until the disconnect was handled (${attempts} tried)`);
  const newcomer = await h.client(node.url, { name: 'newcomer' });
  const reply = await newcomer.socket.timeout(WAIT_MS).emitWithAck('call:join', { room: 'held' });
  assert.deepEqual(reply.peers.map((peer) => peer.id), [observer.welcome.you.conn], 'nobody who left is still in the call');
});
