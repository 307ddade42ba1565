// Expiry in cluster mode (SPEC §8 with §6): clips live in Redis with native expiry, each key
// of a clip expiring at the clip's own `expires_at`. A sweep never runs during the test
// (--sweep-every 1h), so a clip that vanishes from both nodes' replay and GIF route, and from
// Redis, once it expired can only have been removed by Redis's own expiry.
//
// Node A makes clips that live 2 s, node B clips that live an hour (--clip-ttl is a node's
// own): B's clip is alive through the whole test whatever the machine's speed, so that it is
// still served after A's expired shows that the expiry is the clip's own, without the test
// having to run between two deadlines. How late after `expires_at` a clip is gone is a time,
// measured by the load tool (`node tools/load.mjs --only outage`, phase k.).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { once, sendGoodClip, loadFrames, fetchGif, replayKeys, eventually, WAIT_MS } from '../e2e/helpers.mjs';
import { clusterTest } from './services.mjs';

const FRAMES = loadFrames();
const TTL_MS = 2000;
const LONG_TTL_MS = 3_600_000;

/** Every key of Redis that names `clipKey`. */
async function keysOf(redis, clipKey) {
  return (await redis.keys()).filter((name) => name.includes(clipKey));
}

async function sleepUntil(epochMs) {
  await sleep(Math.max(0, epochMs - Date.now()));
}

clusterTest('an expired clip is gone from both nodes\' replay and GIF route, and from Redis, by Redis\'s own expiry', null, async (t, h) => {
  const { redis, nodes: [a, b] } = await h.cluster({
    nginx: false,
    args: ['--sweep-every', '1h'],
    nodeArgs: [['--clip-ttl', '2s'], ['--clip-ttl', '1h']],
  });
  const senderA = await h.client(a.url, { name: 'first' });
  const senderB = await h.client(b.url, { name: 'second' });
  const first = await sendGoodClip(senderA.socket, { message: 'short-lived', frames: FRAMES.slice(0, 2) });
  const arrived = once(senderA.socket, 'message');
  const second = await sendGoodClip(senderB.socket, { message: 'long-lived', frames: FRAMES.slice(2, 4) });
  await arrived;
  assert.equal(first.expires_at - first.created_at, TTL_MS);
  assert.equal(second.expires_at - second.created_at, LONG_TTL_MS);
  // A report is kept beside its clip, and must expire with it.
  assert.deepEqual(await senderB.socket.timeout(WAIT_MS).emitWithAck('report', { key: first.key }), { ok: true });

  // Before: every key of each clip carries its expires_at, and the first is served everywhere
  // while it lives (unless this machine was so slow that it expired already: then the checks
  // after its expiry below still hold, and these are skipped, said so).
  for (const clip of [first, second]) {
    const keys = await keysOf(redis, clip.key);
    assert.ok(keys.length > 0 || clip === first, `Redis has keys naming ${clip.key}: ${JSON.stringify(await redis.keys())}`);
    for (const name of keys) {
      assert.equal(Number(await redis.cli('PEXPIRETIME', name)), clip.expires_at, `${name} expires at the clip's expires_at`);
    }
  }
  for (const node of [a, b]) {
    const gif = await fetchGif(node.url, first.clip);
    if (gif.response.status === 404 && Date.now() >= first.expires_at) {
      t.diagnostic(`${first.clip} expired before it was fetched from ${node.url}`);
      continue;
    }
    assert.equal(gif.response.status, 200, `${first.clip} on ${node.url}`);
    const maxAge = Number(gif.response.headers.get('cache-control').match(/max-age=(\d+)/)[1]);
    assert.ok(maxAge <= 2, `max-age ${maxAge} s is at most the seconds left`);
  }

  // After the first's expiry: gone everywhere; the second is still served.
  await sleepUntil(first.expires_at);
  for (const node of [a, b]) {
    await eventually(async () => (await fetchGif(node.url, first.clip)).response.status === 404, `the expired GIF is 404 on ${node.url}`);
    assert.ok(!(await replayKeys(node.url)).includes(first.key), `the expired clip is not replayed by ${node.url}`);
    assert.equal((await fetchGif(node.url, second.clip)).response.status, 200, `the live one is still served on ${node.url}`);
    assert.ok((await replayKeys(node.url)).includes(second.key), `the live one is still replayed by ${node.url}`);
  }
  await eventually(async () => (await keysOf(redis, first.key)).length === 0, 'no key in Redis names the expired clip');
  assert.ok((await keysOf(redis, second.key)).length > 0, 'the live clip\'s keys are still in Redis');
});
