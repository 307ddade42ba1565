// The two refusals of SPEC §5 that a client cannot cause by what it sends, provoked end to
// end: `busy` (the encoder queue is full) and `internal` (the store cannot write). Each is
// checked for its exact reply, its messageerror, its metric, that nothing was stored or
// broadcast, and that the server serves again once the cause is gone.
//
// `busy`: a clip holds its place in the queue from admission until it is stored and acked
// (src/encode_queue.rs: 32 places per core). With every fsync held at a gate the test
// controls (tools/fsync-gate.c), no admitted clip can finish, so the queue fills exactly
// and stays full: the next clip is refused at once, whatever the machine's speed.
//
// `internal`: the data dir's `clips/` folder, where each clip's files are written before its
// record (src/store/files.rs), is swapped for a plain file while the server runs, so
// creating a file fails (ENOTDIR). A chmod would not do: the tests run as root, whom
// permissions do not stop.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  e2e, eventually, expectNoEvent, loadFrames, metricsText, metricValue, sendClip, sendGoodClip,
  replayKeys, WAIT_MS,
} from './helpers.mjs';
import { fsyncGateEnv, fsyncGateLibrary } from '../../tools/fsync-gate.mjs';

const FRAMES = loadFrames();
/** SPEC §5: five `message` events in a burst from one socket. */
const BURST = 5;
/** src/encode_queue.rs: places per core; the server's core count decides the total. */
const PLACES_PER_CORE = 32;
/** No machine this runs on has more cores than this. */
const MOST_SENDERS = 1024 / BURST;
const BUSY_MESSAGE = 'the server is busy making other clips; try again';
const INTERNAL_MESSAGE = 'something went wrong on the server; try again';

const inFlight = async (url) => metricValue(await metricsText(url), 'loopchat_clips_in_flight');
const rejected = async (url, code) => metricValue(await metricsText(url), 'loopchat_clips_rejected_total', { code });

e2e('busy: with every clip in the queue held, the next is refused busy at once; once they go, all are acked and clips flow again', async (t, h) => {
  const gateDir = mkdtempSync(join(tmpdir(), 'loopchat-gate-'));
  h.cleanups.push(() => rmSync(gateDir, { recursive: true, force: true }));
  const gate = join(gateDir, 'held');
  const server = await h.server({ args: ['--replay', '10000'], env: fsyncGateEnv(gate) });
  assert.ok(readFileSync(`/proc/${server.process.pid}/maps`, 'utf8').includes(fsyncGateLibrary()), 'the fsync gate is loaded into the server');
  const observer = await h.client(server.url, { name: 'observer' });
  // Opened again before the server is stopped (cleanups run last first): its stop waits for
  // every clip in flight, which the gate would hold for ever.
  writeFileSync(gate, 'held\n');
  h.cleanups.push(() => rmSync(gate, { force: true }));

  // Bursts of five from one sender after another (five is the rate limit's burst), each
  // waited for until all of its clips are admitted (in flight, held) or refused.
  const sent = [];
  const replies = new Map();
  /** The replies that came while the gate is closed: an admitted clip's is held. */
  const answered = [];
  let lastBurst;
  for (let s = 0; ; s += 1) {
    assert.ok(s < MOST_SENDERS, `no clip refused busy after ${sent.length} clips held in flight`);
    const sender = await h.client(server.url, { name: `sender-${s}` });
    lastBurst = [];
    for (let i = 0; i < BURST; i += 1) {
      const id = `s${s}-${i}`;
      sent.push({ id, sender });
      lastBurst.push(id);
      const reply = sender.socket.timeout(10 * WAIT_MS).emitWithAck('message', { id, message: id, frames: [FRAMES[i]] });
      reply.then((value) => answered.push({ id, reply: value }), () => {});
      replies.set(id, reply);
    }
    await eventually(async () => (await inFlight(server.url)) + answered.length === sent.length,
      `each of ${sent.length} clips admitted or answered`);
    if (answered.length > 0) break;
  }

  const held = await inFlight(server.url);
  const refusedIds = [...answered];
  t.diagnostic(`${held} clips held in flight; ${refusedIds.length} refused of ${sent.length}`);
  assert.ok(held > 0 && held % PLACES_PER_CORE === 0, `the queue holds ${PLACES_PER_CORE} per core: ${held}`);
  assert.equal(refusedIds.length, sent.length - held, 'every clip past the queue\'s places is refused');
  for (const { id, reply } of refusedIds) {
    assert.deepEqual(reply, { ok: false, error: { code: 'busy', message: BUSY_MESSAGE } }, `${id}: ${JSON.stringify(reply)}`);
  }
  // Every earlier burst was admitted whole before the next was sent, so the refused ones
  // are of the last burst (which of its five, the server's tasks decide).
  assert.ok(refusedIds.every(({ id }) => lastBurst.includes(id)), `refused: ${refusedIds.map(({ id }) => id)}; last burst: ${lastBurst}`);
  for (const { id } of refusedIds) {
    const { sender } = sent.find((clip) => clip.id === id);
    await eventually(() => sender.received.messageerror.some((error) => error.id === id), `messageerror for ${id}`);
    assert.deepEqual(sender.received.messageerror.find((error) => error.id === id), { id, code: 'busy', message: BUSY_MESSAGE });
  }

  // Still full: a fresh client's clip is refused busy too, and nothing of it is kept.
  const late = await h.client(server.url, { name: 'late' });
  const refusal = await sendClip(late.socket, { id: 'late', message: 'late', frames: FRAMES.slice(0, 2) });
  assert.deepEqual(refusal.reply, { ok: false, error: { code: 'busy', message: BUSY_MESSAGE } });
  assert.deepEqual(refusal.event, { id: 'late', code: 'busy', message: BUSY_MESSAGE });
  assert.equal(await rejected(server.url, 'busy'), refusedIds.length + 1);
  assert.equal(await inFlight(server.url), held, 'a refused clip takes no place');
  assert.equal(observer.received.message.length, 0, 'nothing was broadcast while everything is held');

  // The gate opens: every held clip is stored and acked, the refused ones are not.
  rmSync(gate);
  const acked = [];
  for (const [id, reply] of replies) {
    if (refusedIds.some((refused) => refused.id === id)) continue;
    const value = await reply;
    assert.equal(value.ok, true, `${id}: ${JSON.stringify(value)}`);
    acked.push(value.message);
  }
  assert.equal(acked.length, held);
  await eventually(() => observer.received.message.length === held, `the observer to get the ${held} acked clips`);
  await expectNoEvent(observer.socket, 'message');
  assert.deepEqual(observer.received.message.map((clip) => clip.id).sort(), acked.map((clip) => clip.id).sort());
  assert.deepEqual((await replayKeys(server.url)).sort(), acked.map((clip) => clip.key).sort(), 'the store holds the acked clips only');
  assert.equal(await inFlight(server.url), 0);

  // And the queue takes clips again.
  const after = await sendGoodClip(late.socket, { id: 'after', message: 'after', frames: FRAMES.slice(0, 2) });
  assert.equal(after.id, 'after');
});

e2e('internal: a clip the store cannot write is refused internal, saying nothing of why; the log says why; fixed, clips flow again', async (t, h) => {
  const server = await h.server();
  const sender = await h.client(server.url, { name: 'sender' });
  const observer = await h.client(server.url, { name: 'observer' });
  const before = await sendGoodClip(sender.socket, { id: 'before', message: 'before', frames: FRAMES.slice(0, 2) });
  await eventually(() => observer.received.message.length === 1, 'the first clip at the observer');

  // clips/ becomes a file: creating `clips/<key>.gif` fails with ENOTDIR, as root too.
  const folder = join(server.dataDir, 'clips');
  const away = join(server.dataDir, 'clips-away');
  renameSync(folder, away);
  writeFileSync(folder, 'not a folder\n');
  const restore = () => {
    if (existsSync(away)) {
      rmSync(folder, { force: true });
      renameSync(away, folder);
    }
  };
  h.cleanups.push(restore);

  const { reply, event, eventName } = await sendClip(sender.socket, { id: 'doomed', message: 'cannot be stored', frames: FRAMES.slice(0, 3) });
  assert.deepEqual(reply, { ok: false, error: { code: 'internal', message: INTERNAL_MESSAGE } }, JSON.stringify(reply));
  assert.equal(eventName, 'messageerror');
  assert.deepEqual(event, { id: 'doomed', code: 'internal', message: INTERNAL_MESSAGE });
  assert.equal(sender.socket.connected, true, 'the sender stays connected');
  assert.equal(await rejected(server.url, 'internal'), 1);

  // Details go to the log, not to the client: one line names the failure and its cause.
  const line = await eventually(() => server.output().split('\n').find((text) => /storing a clip failed/.test(text)), 'the failure in the log');
  assert.match(line, /ERROR/, line);
  assert.match(line, /Not a directory/, `the log line says why: ${line}`);
  assert.doesNotMatch(JSON.stringify([reply, event]), /directory|clips|sled|os error|\//i, 'the client is told nothing of the cause');

  // Nothing stored or broadcast: the store holds the first clip only, and the next clip to
  // reach the observer (once the folder is back) is the one sent after the refusal.
  restore();
  assert.deepEqual(await replayKeys(server.url), [before.key], 'the refused clip is not stored');
  const after = await sendGoodClip(sender.socket, { id: 'after', message: 'after', frames: FRAMES.slice(0, 2) });
  await eventually(() => observer.received.message.length === 2, 'the next clip at the observer');
  assert.deepEqual(observer.received.message.map((clip) => clip.id), ['before', 'after'], 'the refused clip was never broadcast');
  assert.deepEqual(await replayKeys(server.url), [before.key, after.key]);
  assert.equal((await fetch(`${server.url}${before.clip}`)).status, 200, 'the clip stored before is still served');
  assert.equal((await fetch(`${server.url}${after.clip}`)).status, 200, 'and the one after');
});
