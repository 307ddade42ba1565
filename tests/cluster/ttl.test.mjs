// Expiry in cluster mode (SPEC §8 with §6): clips live in Redis with native expiry, each key
// of a clip expiring at the clip's own `expires_at`. With --clip-ttl 2s and a sweep that never
// runs during the test (--sweep-every 1h), a clip must vanish from both nodes' replay and GIF
// route, and from Redis, the moment it expires: only Redis's own expiry can have done it.
//
// Fails until cluster mode lands (issue 11): the nodes are started with --redis-url.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { once, sendGoodClip, loadFrames, fetchGif, replayKeys, WAIT_MS } from '../e2e/helpers.mjs';
import { clusterTest } from './services.mjs';

const FRAMES = loadFrames();
const TTL_MS = 2000;
/** Past `expires_at`, for the clocks of the test and of Redis (the same machine's). */
const AFTER_EXPIRY_MS = 100;

/** Every key of Redis that names `clipKey`. */
async function keysOf(redis, clipKey) {
  return (await redis.keys()).filter((name) => name.includes(clipKey));
}

async function sleepUntil(epochMs) {
  await sleep(Math.max(0, epochMs - Date.now()));
}

clusterTest('an expired clip is gone from both nodes\' replay and GIF route, and from Redis, by Redis\'s own expiry', null, async (t, h) => {
  const { redis, nodes: [a, b] } = await h.cluster({ nginx: false, args: ['--clip-ttl', '2s', '--sweep-every', '1h'] });
  const senderA = await h.client(a.url, { name: 'first' });
  const senderB = await h.client(b.url, { name: 'second' });
  const first = await sendGoodClip(senderA.socket, { message: 'short-lived', frames: FRAMES.slice(0, 2) });
  await sleep(1000);
  const arrived = once(senderA.socket, 'message');
  const second = await sendGoodClip(senderB.socket, { message: 'a second later', frames: FRAMES.slice(2, 4) });
  await arrived;
  assert.equal(first.expires_at - first.created_at, TTL_MS);
  // A report is kept beside its clip, and must expire with it.
  assert.deepEqual(await senderB.socket.timeout(WAIT_MS).emitWithAck('report', { key: first.key }), { ok: true });

  // Before: served everywhere, and every key of the clip carries its expires_at.
  for (const clip of [first, second]) {
    const keys = await keysOf(redis, clip.key);
    assert.ok(keys.length > 0, `Redis has keys naming ${clip.key}: ${JSON.stringify(await redis.keys())}`);
    for (const name of keys) {
      assert.equal(Number(await redis.cli('PEXPIRETIME', name)), clip.expires_at, `${name} expires at the clip's expires_at`);
    }
  }
  for (const node of [a, b]) {
    assert.deepEqual((await replayKeys(node.url)).slice(-2), [first.key, second.key]);
    const gif = await fetchGif(node.url, first.clip);
    assert.equal(gif.response.status, 200, `${first.clip} on ${node.url}`);
    const maxAge = Number(gif.response.headers.get('cache-control').match(/max-age=(\d+)/)[1]);
    assert.ok(maxAge <= 2, `max-age ${maxAge} s is at most the seconds left`);
  }

  // Just after the first's expiry: gone everywhere; the second is still served.
  await sleepUntil(first.expires_at + AFTER_EXPIRY_MS);
  assert.ok(Date.now() < second.expires_at - 200, 'the check runs while the second clip is alive');
  for (const node of [a, b]) {
    assert.equal((await fetchGif(node.url, first.clip)).response.status, 404, `the expired GIF is 404 on ${node.url}`);
    assert.equal((await fetchGif(node.url, second.clip)).response.status, 200, `the live one is still served on ${node.url}`);
    const replay = await replayKeys(node.url);
    assert.ok(!replay.includes(first.key), `the expired clip is not replayed by ${node.url}`);
    assert.ok(replay.includes(second.key));
  }
  assert.deepEqual(await keysOf(redis, first.key), [], 'no key in Redis names the expired clip');

  await sleepUntil(second.expires_at + AFTER_EXPIRY_MS);
  for (const node of [a, b]) {
    assert.equal((await fetchGif(node.url, second.clip)).response.status, 404);
    assert.ok(!(await replayKeys(node.url)).includes(second.key));
  }
  assert.deepEqual(await keysOf(redis, second.key), [], 'no key in Redis names the second clip either');
});
