// A slow disk (every fsync +400 ms, through the LD_PRELOAD shim of tools/slow-fsync.c):
// clips are still acked, in batches that share a flush; /healthz keeps answering; nothing
// acked is lost after kill -9; and a stop still answers every clip in flight.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  e2e, sendGoodClip, loadFrames, fetchGif, clipsStored, metricsText, metricValue,
  untilSomeInFlight,
} from './helpers.mjs';
import { slowDiskEnv, slowFsyncLibrary } from '../../tools/slow-fsync.mjs';

const FRAMES = loadFrames();
const SLOW_DISK = slowDiskEnv(400);
// A liveness bound for one health check, not a speed claim.
const HEALTH_LIVENESS_MS = 10_000;

function assertShimLoaded(server) {
  const maps = readFileSync(`/proc/${server.process.pid}/maps`, 'utf8');
  assert.ok(maps.includes(slowFsyncLibrary()), 'the slow-fsync shim is loaded into the server');
}

/** Asks /healthz again and again until `until` settles; returns every status seen. */
async function watchHealth(url, until) {
  const statuses = [];
  let done = false;
  until.finally(() => { done = true; });
  while (!done) {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(HEALTH_LIVENESS_MS) });
    statuses.push(response.status);
    await response.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return statuses;
}

e2e('on a slow disk clips are acked in shared flushes, /healthz answers, and kill -9 loses nothing acked', async (t, h) => {
  const first = await h.server({ env: SLOW_DISK });
  assertShimLoaded(first);
  const senders = await Promise.all([0, 1, 2, 3, 4, 5].map((s) => h.client(first.url, { name: `sender-${s}` })));

  // Each sender's whole burst at once: 30 clips, all waiting on the disk together.
  const sending = Promise.all(senders.flatMap((sender, s) => [0, 1, 2, 3, 4].map((i) =>
    sender.socket.timeout(60_000).emitWithAck('message', { id: `${s}-${i}`, message: `slow ${s}-${i}`, frames: [FRAMES[i], FRAMES[i + 5]] }))));
  const [replies, health] = await Promise.all([sending, watchHealth(first.url, sending)]);

  assert.ok(replies.every((reply) => reply.ok), `every clip is acked: ${JSON.stringify(replies.filter((r) => !r.ok))}`);
  assert.ok(health.length > 0 && health.every((status) => status === 200), `/healthz answered 200 throughout: ${health}`);
  const metrics = await metricsText(first.url);
  assert.equal(metricValue(metrics, 'loopchat_store_batch_clips_sum'), 30, 'every clip was in one flushed batch');
  const flushes = metricValue(metrics, 'loopchat_store_batch_clips_count');
  assert.ok(flushes < 30, `clips waiting together share a flush: ${flushes} flushes for 30 clips`);

  await first.kill9();
  const second = await h.server({ dataDir: first.dataDir });
  assert.equal(await clipsStored(second.url), 30, 'all 30 acked clips are there after kill -9');
  for (const reply of replies) {
    const { response } = await fetchGif(second.url, reply.message.clip);
    assert.equal(response.status, 200, `the GIF of ${reply.message.id} is served after the restart`);
  }
});

e2e('on a slow disk a stop answers every clip in flight, and they are there after a restart', async (t, h) => {
  const first = await h.server({ env: SLOW_DISK });
  assertShimLoaded(first);
  const senders = await Promise.all([0, 1].map((s) => h.client(first.url, { name: `stopper-${s}` })));
  const replies = senders.flatMap((sender, s) => [0, 1, 2, 3, 4].map((i) =>
    sender.socket.timeout(60_000).emitWithAck('message', { id: `${s}-${i}`, message: `${i}`, frames: FRAMES.slice(i, i + 3) })));
  // The stop comes once all ten are admitted and some still wait for the disk.
  await untilSomeInFlight(() => metricsText(first.url), 10);
  const exit = await first.stop();
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);

  const answered = await Promise.all(replies);
  assert.ok(answered.every((reply) => reply.ok), `every clip in flight is stored and acked: ${JSON.stringify(answered.map((r) => r.error))}`);
  const second = await h.server({ dataDir: first.dataDir });
  assert.equal(await clipsStored(second.url), 10);
  const client = await h.client(second.url, { name: 'reader' });
  const good = await sendGoodClip(client.socket, { message: 'after the slow stop', frames: [FRAMES[0]] });
  assert.ok(good.key, 'the restarted server takes clips again');
});
