// Clips as video (SPEC §12) in cluster mode (§8): a clip's MP4 and poster live in Redis
// beside its GIF, so every node and nginx serve them (ranges included, through nginx too);
// they expire, are removed by a moderator and survive Redis's kill -9 together with the clip;
// and a clip Redis kept from before videos replays with `video` null. The single-node suite
// is tests/e2e/video.test.mjs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { sendGoodClip, loadFrames, eventually, replayOf, REPO_ROOT, WAIT_MS } from '../e2e/helpers.mjs';
import { assertPoster, assertVideo } from '../lib/video.mjs';
import { clusterTest } from './services.mjs';

const FRAMES = loadFrames();
const ADMIN = 'cluster-video-admin-token-0123';

const filesOf = (clip) => [clip.clip, clip.video, clip.poster];

async function get(base, path, headers = {}) {
  const response = await fetch(new URL(path, base), { headers });
  return { response, body: Buffer.from(await response.arrayBuffer()) };
}

clusterTest('a clip sent to node A: its MP4 and poster are served whole by node B and through nginx, ranges too', null, async (t, h) => {
  const cluster = await h.cluster({});
  const [a, b] = cluster.nodes;
  const sender = await h.client(a.url, { name: 'sender' });
  const clip = await sendGoodClip(sender.socket, { message: 'video everywhere', frames: FRAMES });
  for (const base of [a.url, b.url, cluster.url]) {
    await assertVideo(assert, base, clip, { sourceJpegs: FRAMES });
    await assertPoster(assert, base, clip, { firstJpeg: FRAMES[0] });
  }
  const whole = (await get(a.url, clip.video)).body;
  const etags = new Set();
  for (const base of [b.url, cluster.url]) {
    const { response, body } = await get(base, clip.video, { Range: 'bytes=100-199' });
    assert.equal(response.status, 206, `a range through ${base}`);
    assert.equal(response.headers.get('content-range'), `bytes 100-199/${whole.length}`);
    assert.ok(body.equals(whole.subarray(100, 200)), 'exactly those bytes');
    etags.add(response.headers.get('etag'));
    const past = await get(base, clip.video, { Range: `bytes=${whole.length}-` });
    assert.equal(past.response.status, 416, `past the end through ${base}`);
  }
  assert.equal(etags.size, 1, 'the same ETag from every node');
  const revalidated = await get(cluster.url, clip.video, { 'If-None-Match': [...etags][0] });
  assert.equal(revalidated.response.status, 304, 'an ETag from one node revalidates through nginx');
});

clusterTest('the MP4 and poster expire with the clip, go with a moderator\'s removal, and survive Redis\'s kill -9', null, async (t, h) => {
  const cluster = await h.cluster({ nginx: false, args: ['--admin-token', ADMIN], nodeArgs: [['--clip-ttl', '2s'], []] });
  const { redis, nodes: [a, b] } = cluster;
  const onA = await h.client(a.url, { name: 'short-lived' });
  const onB = await h.client(b.url, { name: 'long-lived' });
  const short = await sendGoodClip(onA.socket, { message: 'expires', frames: FRAMES.slice(0, 2) });
  const removed = await sendGoodClip(onB.socket, { message: 'removed', frames: FRAMES.slice(2, 4) });
  const kept = await sendGoodClip(onB.socket, { message: 'kept', frames: FRAMES.slice(4, 7) });

  const deleted = await fetch(new URL(`/admin/clips/${removed.key}`, b.url), { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(deleted.status, 204);
  for (const node of [a, b]) {
    for (const path of filesOf(removed)) assert.equal((await get(node.url, path)).response.status, 404, `${path} removed, on ${node.url}`);
  }
  assert.deepEqual((await redis.keys()).filter((name) => name.includes(removed.key)), [], 'nothing of the removed clip in Redis');

  await sleep(Math.max(0, short.expires_at - Date.now()) + 50);
  for (const node of [a, b]) {
    for (const path of filesOf(short)) assert.equal((await get(node.url, path)).response.status, 404, `${path} expired, on ${node.url}`);
  }
  await eventually(async () => (await redis.keys()).every((name) => !name.includes(`:${short.key}`)), 'Redis drops the expired clip\'s files by itself', WAIT_MS, 100);

  const before = await Promise.all(filesOf(kept).map(async (path) => (await get(b.url, path)).body));
  await redis.kill9();
  await redis.start();
  await eventually(async () => (await fetch(new URL('/healthz', a.url))).status === 200, 'node A sees Redis back', 20_000, 100);
  for (const [index, path] of filesOf(kept).entries()) {
    const after = await eventually(async () => {
      const { response, body } = await get(a.url, path);
      return response.status === 200 ? body : undefined;
    }, `${path} served again after Redis's restart`, 20_000, 100);
    assert.ok(after.equals(before[index]), `${path} is the same after Redis's kill -9`);
  }
});

clusterTest('a clip Redis kept from before videos: replayed with video and poster null, its GIF served, no MP4', null, async (t, h) => {
  const cluster = await h.cluster({ nginx: false });
  const { redis, nodes: [a, b] } = cluster;
  // The records a node wrote before §12: the clip without video fields, and its GIF.
  const key = '01a2451b-6f95-70ec-ab9d-af9e9d87c2f9'; // one of tests/fixtures/store-before-video
  const gif = readFileSync(join(REPO_ROOT, `tests/fixtures/store-before-video/gifs/${key}.gif`));
  const now = Date.now();
  const old = {
    key, id: null, author: { id: 's6zmsx2y5wyfecg6lvu7', name: 'before-video' }, message: 'from before videos',
    clip: `/clips/${key}.gif`, width: 200, height: 200, frames: 3, delay_ms: 200, bytes: gif.length,
    created_at: now, expires_at: now + 600_000,
  };
  await redis.cli('SET', `loopchat:clip:${key}`, JSON.stringify(old), 'PXAT', String(old.expires_at));
  // A binary value goes in through redis-cli's stdin (-x: the last argument).
  const setGif = promisify(execFile)('redis-cli', ['-s', redis.socket, '-x', 'SET', `loopchat:gif:${key}`]);
  setGif.child.stdin.end(gif);
  await setGif;
  await redis.cli('PEXPIREAT', `loopchat:gif:${key}`, String(old.expires_at));
  await redis.cli('ZADD', 'loopchat:recent', String(old.created_at), key);
  await redis.cli('ZADD', 'loopchat:expiry', String(old.expires_at), key);

  for (const node of [a, b]) {
    const [replayed] = (await replayOf(node.url)).filter((clip) => clip.key === key);
    assert.ok(replayed, `${node.url} replays the old clip`);
    assert.equal(replayed.video, null);
    assert.equal(replayed.poster, null);
    assert.equal(replayed.video_bytes, null);
    const served = await get(node.url, replayed.clip);
    assert.equal(served.response.status, 200);
    assert.ok(served.body.equals(gif), 'its GIF');
    for (const ext of ['mp4', 'jpg']) assert.equal((await get(node.url, `/clips/${key}.${ext}`)).response.status, 404, `no .${ext} on ${node.url}`);
  }
});
