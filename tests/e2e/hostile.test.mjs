// Hostile input against the real server (SPEC §2, §5): every field of the `message` payload
// with the wrong type, absurd sizes, odd but valid JPEGs, events nobody listens to, and
// malformed Socket.IO / Engine.IO packets over a raw WebSocket; then a few hundred of those
// at once while the server's resident memory is watched.
//
// errors.test.mjs covers one case per SPEC code; this file covers what it leaves out. Each
// case is sent by a fresh socket (a socket's rate limit is 5 in a burst) to a server shared
// by the cases of one group, and after each one the suite checks that:
//   - a refusal has the exact SPEC code, in the ack reply { ok: false, error: { code,
//     message } } and in `messageerror` { id, code, message };
//   - nothing was stored (loopchat_clips_stored and a new client's replay are unchanged) and
//     an observer got no `message`;
//   - the server is still up and serving: a fresh client's good clip is acked and broadcast,
//     and nothing in its output says `panicked`.
//
// What the server does with packets it cannot parse (found by running this file, and
// asserted as such): a packet that breaks the Engine.IO or Socket.IO framing closes that one
// connection; a well-formed packet whose payload is odd (an unknown namespace, an ack for
// nothing, JSON nested 100 000 deep, a 4 MB event name) is answered or ignored and the
// connection stays open. An ack id beyond i64 (no JavaScript client can send one) is
// dropped: the event is still handled, `messageerror` is sent, no ack reply is. A binary
// placeholder's `num` is ignored (socketioxide hands out attachments in order), so
// `{ _placeholder: true, num: 5 }` with one attachment gets that attachment.
//
// Progressive, greyscale and CMYK JPEGs (tests/fixtures/hostile) are accepted, and their GIFs
// are compared with the GIF of the baseline frame they were made from.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  e2e, once, sendClip, sendGoodClip, loadFrames, dataUri, patchDimensions, noise, PNG_1x1,
  clipsStored, replayKeys, fetchGif, eventually, roundTrip, REPO_ROOT, WAIT_MS,
} from './helpers.mjs';

const FRAMES = loadFrames();
const [F1, F2, F3] = FRAMES;
const KiB = 1024;
const MiB = 1024 * KiB;
const ID = 'hostile-id';

/** tests/fixtures/hostile/<name>.jpg: 200×200 re-encodings of f-1.jpg (see its README.md). */
const fixture = (name) => readFileSync(join(REPO_ROOT, 'tests/fixtures/hostile', `${name}.jpg`));
const PROGRESSIVE = fixture('progressive');
const GREY = fixture('grey');
const CMYK = fixture('cmyk');

/** A copy of `jpeg` whose frame header (baseline SOF0 or progressive SOF2) claims `width`×`height`. */
function forgeSize(jpeg, width, height) {
  const copy = Buffer.from(jpeg);
  for (let at = 2; at + 9 <= copy.length; at += 2 + copy.readUInt16BE(at + 2)) {
    if (copy[at] !== 0xFF) break;
    if (copy[at + 1] === 0xC0 || copy[at + 1] === 0xC2) {
      copy.writeUInt16BE(height, at + 5);
      copy.writeUInt16BE(width, at + 7);
      return copy;
    }
  }
  throw new Error('no SOF0/SOF2 marker before the scan');
}

/** The frame from errors.test.mjs that makes zune-jpeg panic: 4×4 chroma subsampling. */
function decoderPanicFrame(jpeg) {
  const copy = Buffer.from(jpeg);
  copy[copy.indexOf(Buffer.from([0xFF, 0xC0])) + 14] = 0x44;
  return copy;
}

// ---- shared checks ---------------------------------------------------------------------------

/** A server and a client watching for broadcasts, shared by the cases of one test. */
async function openRoom(h) {
  const server = await h.server();
  const observer = await h.client(server.url, { name: 'observer' });
  return { h, server, url: server.url, observer };
}

/** What must not change while a hostile case runs. */
async function snapshot(room) {
  return {
    stored: await clipsStored(room.url),
    replay: await replayKeys(room.url),
    broadcasts: room.observer.received.message.length,
  };
}

/** Clips a new client is replayed (the server's default --replay). */
const REPLAY = 10;

/**
 * Nothing stored, nothing broadcast since `before`. Nothing is watched for a time: a good
 * clip from a fresh client is the marker. It is sent after whatever the hostile case sent
 * was answered, refused or dropped, so a broadcast of that would have reached the observer
 * first; and it must be the one clip added to the store and the replay.
 */
async function assertNothingHappened(room, before) {
  const marker = await assertStillServes(room);
  assert.deepEqual(room.observer.received.message.slice(before.broadcasts).map((clip) => clip.key), [marker.key], 'the observer got no `message` but the marker\'s');
  assert.equal(await clipsStored(room.url), before.stored + 1, 'loopchat_clips_stored grew by the marker only');
  assert.deepEqual(await replayKeys(room.url), [...before.replay, marker.key].slice(-REPLAY), 'a new client\'s replay gained the marker only');
}

/** The server is up, did not panic, and a fresh client's good clip is acked and broadcast. */
async function assertStillServes(room) {
  assert.equal(room.server.process.exitCode, null, 'the server is still running');
  assert.equal(room.server.process.signalCode, null, 'the server is still running');
  const fresh = await room.h.client(room.url, { name: 'after' });
  const broadcast = once(room.observer.socket, 'message', WAIT_MS, (clip) => clip.author.id === fresh.welcome.you.id);
  const good = await sendGoodClip(fresh.socket, { id: 'after', message: 'after', frames: loadFrames() });
  assert.equal((await broadcast).key, good.key, 'the good clip is broadcast');
  fresh.close();
  assert.doesNotMatch(room.server.output(), /panicked/, 'no panic in the server\'s output');
  return good;
}

/** Sends `payload` with an ack callback; checks the refusal is `code` both ways; returns the messageerror. */
async function assertRefused(socket, payload, code) {
  const { reply, event, eventName } = await sendClip(socket, payload);
  assert.equal(reply?.ok, false, `ack reply: ${JSON.stringify(reply)?.slice(0, 300)}`);
  assert.equal(reply.error?.code, code, `ack reply: ${JSON.stringify(reply).slice(0, 300)}`);
  assert.ok(typeof reply.error.message === 'string' && reply.error.message.length > 0, 'the error is explained in words');
  assert.equal(eventName, 'messageerror', `sender got ${eventName}`);
  assert.equal(event.code, code, `messageerror: ${JSON.stringify(event).slice(0, 300)}`);
  assert.equal(event.message, reply.error.message);
  assert.ok('id' in event, 'messageerror has an id field');
  return event;
}

/** Runs one case as a subtest; on failure the server's output is printed. */
async function step(t, room, name, fn, options = {}) {
  await t.test(name, options, async (st) => {
    try {
      await fn(st);
    } catch (error) {
      process.stderr.write(`\n---- loopchat output (${name}) ----\n${room.server.output()}\n---- end ----\n`);
      throw error;
    }
  });
}

/**
 * One refused `message` from a fresh socket, then every after-check. `echo` says what
 * messageerror.id must be: 'id' (the id sent), 'null', or 'id-or-null' (the payload did not
 * parse, so echoing it is welcome and null is acceptable).
 */
async function refusedCase(room, payload, code, echo) {
  const before = await snapshot(room);
  const sender = await room.h.client(room.url, { name: 'hostile' });
  const event = await assertRefused(sender.socket, payload, code);
  if (echo === 'id') assert.equal(event.id, payload.id, 'messageerror echoes the id');
  if (echo === 'null') assert.equal(event.id, null, 'messageerror.id is null');
  if (echo === 'id-or-null') assert.ok(event.id === null || event.id === payload.id, `messageerror.id ${JSON.stringify(event.id)?.slice(0, 40)}`);
  assert.equal(sender.socket.connected, true, 'the refused sender stays connected');
  await assertNothingHappened(room, before);
  sender.close();
  await assertStillServes(room);
}

// ---- 1. wrong types and odd values in every field --------------------------------------------

const PAYLOAD_CASES = [
  // invalid_payload: the payload does not have the shape { id?: string, message: string,
  // frames: [Frame] }. A frame of the wrong type fails that shape too, before any count.
  { code: 'invalid_payload', echo: 'null', what: 'id is an object', payload: { id: { a: 1 }, message: 'x', frames: [F1] } },
  { code: 'invalid_payload', echo: 'null', what: 'id is an array', payload: { id: ['a'], message: 'x', frames: [F1] } },
  { code: 'invalid_payload', echo: 'null', what: 'id is a boolean', payload: { id: true, message: 'x', frames: [F1] } },
  { code: 'invalid_payload', echo: 'null', what: 'id is a string of 129 characters (the limit is 128; an invalid id is not echoed)', payload: { id: 'i'.repeat(129), message: 'x', frames: [F1] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'message is an array', payload: { id: ID, message: ['a'], frames: [F1] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'message is an object', payload: { id: ID, message: { text: 'a' }, frames: [F1] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'message is null', payload: { id: ID, message: null, frames: [F1] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'message is a boolean', payload: { id: ID, message: false, frames: [F1] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'frames is an object (holding a binary frame)', payload: { id: ID, message: '', frames: { 0: F1 } } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'frames is null', payload: { id: ID, message: '', frames: null } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'frames is an array of arrays', payload: { id: ID, message: '', frames: [[F1], [F2]] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'one frame is a nested array among good frames', payload: { id: ID, message: '', frames: [F1, [F2, F3]] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'a frame that is an object', payload: { id: ID, message: '', frames: [F1, { data: 'x' }] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'a frame that is a boolean', payload: { id: ID, message: '', frames: [true] } },
  { code: 'invalid_payload', echo: 'id-or-null', what: 'a frame that is null', payload: { id: ID, message: '', frames: [F1, null] } },
  {
    code: 'invalid_payload',
    echo: 'id-or-null',
    what: 'a forged binary placeholder { _placeholder: true, num: 0 } in a text packet',
    payload: { id: ID, message: '', frames: [{ _placeholder: true, num: 0 }] },
  },
  { code: 'invalid_payload', echo: 'id-or-null', what: '10,000 frames that are numbers (types are checked before the count)', payload: { id: ID, message: '', frames: Array(10_000).fill(7) } },

  // bad_frame_count
  { code: 'bad_frame_count', echo: 'id', what: '10,000 string frames', payload: { id: ID, message: '', frames: Array(10_000).fill('x') } },

  // bad_frame: not a JPEG, or a data URI that is not image/jpeg base64.
  { code: 'bad_frame', echo: 'id', what: 'a data:image/png;base64 URI carrying a PNG', payload: { id: ID, message: '', frames: [dataUri(PNG_1x1, 'image/png')] } },
  { code: 'bad_frame', echo: 'id', what: 'a data:image/jpeg;base64 URI carrying a PNG', payload: { id: ID, message: '', frames: [dataUri(PNG_1x1)] } },
  { code: 'bad_frame', echo: 'id', what: 'a data:image/jpeg;base64 URI with invalid base64', payload: { id: ID, message: '', frames: ['data:image/jpeg;base64,/9j/4AAQSkZJRg###'] } },
  { code: 'bad_frame', echo: 'id', what: 'a data URI with no comma', payload: { id: ID, message: '', frames: [`data:image/jpeg;base64${F1.toString('base64')}`] } },
  { code: 'bad_frame', echo: 'id', what: 'a data:image/jpeg URI that is not base64', payload: { id: ID, message: '', frames: [`data:image/jpeg,${encodeURIComponent(F1.toString('latin1'))}`] } },
  { code: 'bad_frame', echo: 'id', what: 'a data:image/jpeg;base64, URI with nothing after the comma', payload: { id: ID, message: '', frames: ['data:image/jpeg;base64,'] } },
  { code: 'bad_frame', echo: 'id', what: 'an empty string frame', payload: { id: ID, message: '', frames: [F1, ''] } },
  { code: 'bad_frame', echo: 'id', what: 'an empty binary frame', payload: { id: ID, message: '', frames: [F1, Buffer.alloc(0)] } },

  // bad_dimensions: a forged huge header is refused by name, whatever the JPEG flavour.
  { code: 'bad_dimensions', echo: 'id', what: 'a forged 65535×65535 header as the tenth frame', payload: { id: ID, message: '', frames: [...FRAMES.slice(0, 9), patchDimensions(FRAMES[9], 65535, 65535)] } },
  { code: 'bad_dimensions', echo: 'id', what: 'a forged 65535×65535 header in a data URI', payload: { id: ID, message: '', frames: [dataUri(patchDimensions(F1, 65535, 65535))] } },
  { code: 'bad_dimensions', echo: 'id', what: 'a forged 65535×65535 progressive (SOF2) header', payload: { id: ID, message: '', frames: [forgeSize(PROGRESSIVE, 65535, 65535)] } },
  { code: 'bad_dimensions', echo: 'id', what: 'a forged 65535×65535 greyscale header', payload: { id: ID, message: '', frames: [forgeSize(GREY, 65535, 65535)] } },
  { code: 'bad_dimensions', echo: 'id', what: 'a forged 65535×65535 CMYK header', payload: { id: ID, message: '', frames: [forgeSize(CMYK, 65535, 65535)] } },
];

e2e('wrong types and odd values in every field of `message` are refused with the SPEC code', async (t, h) => {
  const room = await openRoom(h);
  for (const { code, echo, what, payload } of PAYLOAD_CASES) {
    await step(t, room, `${code}: ${what}`, () => refusedCase(room, payload, code, echo));
  }
});

// ---- 2. absurd sizes ---------------------------------------------------------------------------

/** Emits `payload` from a fresh socket and expects the server to drop the connection instead of answering. */
async function disconnectedCase(t, room, payload) {
  const before = await snapshot(room);
  const sender = await room.h.client(room.url, { name: 'huge' });
  const disconnected = once(sender.socket, 'disconnect');
  const reply = sender.socket.timeout(WAIT_MS).emitWithAck('message', payload).then(
    (value) => ({ value }),
    (error) => ({ error }),
  );
  const reason = await disconnected;
  assert.equal(reason, 'transport close', 'the server closed the transport');
  const { value, error } = await reply;
  assert.equal(value, undefined, `no ack reply: ${JSON.stringify(value)?.slice(0, 200)}`);
  assert.match(error.message, /disconnected/);
  assert.deepEqual(sender.received.messageack, [], 'no messageack');
  assert.deepEqual(sender.received.messageerror, [], 'no messageerror');
  t.diagnostic(`the server closed the connection (${reason}); no reply`);
  await assertNothingHappened(room, before);
  return assertStillServes(room);
}

/** VmRSS of `pid`, in bytes. */
function rss(pid) {
  const kB = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(kB, 'VmRSS in /proc/<pid>/status');
  return Number(kB[1]) * KiB;
}

const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

e2e('absurd sizes: 10,000 binary frames and one 64 MiB frame cost a connection, nothing more', async (t, h) => {
  const room = await openRoom(h);
  // More than the parser's 64 attachments a packet: the packet is refused at the transport,
  // before any frame is read, so there is no message to answer.
  await step(t, room, '10,000 binary frames: the server closes that connection', (st) =>
    disconnectedCase(st, room, { id: ID, message: '', frames: Array.from({ length: 10_000 }, (_, i) => Buffer.from([0xFF, 0xD8, i & 0xFF])) }));
  // Over the 5 MiB transport limit (SPEC: 3 MiB a message): the WebSocket message is refused
  // without being buffered, so the server's memory does not grow by the frame.
  await step(t, room, 'one 64 MiB binary frame: the server closes that connection without buffering it', async (st) => {
    const huge = Buffer.alloc(64 * MiB, 0x61);
    F1.copy(huge, 0, 0, 20);
    const before = rss(room.server.process.pid);
    await disconnectedCase(st, room, { id: ID, message: 'huge', frames: [huge] });
    const after = rss(room.server.process.pid);
    st.diagnostic(`server RSS ${mib(before)} before, ${mib(after)} after`);
    assert.ok(after - before < 32 * MiB, `RSS grew by ${mib(after - before)}`);
  });
});

// ---- 3. odd but valid JPEGs ----------------------------------------------------------------------

/** Mean absolute difference per channel between two RGBA pixel arrays; and the largest R/G/B spread in `a`. */
function compare(a, b) {
  let sum = 0;
  let lumaSum = 0;
  let spread = 0;
  const luma = (p, i) => 0.299 * p[i] + 0.587 * p[i + 1] + 0.114 * p[i + 2];
  for (let i = 0; i < a.length; i += 4) {
    sum += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
    lumaSum += Math.abs(luma(a, i) - luma(b, i));
    spread = Math.max(spread, Math.abs(a[i] - a[i + 1]), Math.abs(a[i + 1] - a[i + 2]));
  }
  const pixels = a.length / 4;
  return { rgb: sum / pixels / 3, luma: lumaSum / pixels, spread };
}

/** Sends `frames` as a clip that must be accepted; returns the first frame's RGBA pixels of its GIF. */
async function acceptedCase(room, frames) {
  const before = await snapshot(room);
  const sender = await room.h.client(room.url, { name: 'odd-jpeg' });
  const broadcast = once(room.observer.socket, 'message', WAIT_MS, (clip) => clip.author.id === sender.welcome.you.id);
  const clip = await sendGoodClip(sender.socket, { id: ID, message: 'odd', frames });
  assert.equal((await broadcast).key, clip.key, 'broadcast to the observer');
  assert.deepEqual({ width: clip.width, height: clip.height, frames: clip.frames }, { width: 200, height: 200, frames: frames.length });
  assert.equal(await clipsStored(room.url), before.stored + 1, 'stored');
  const { response, gif } = await fetchGif(room.url, clip.clip);
  assert.equal(response.status, 200);
  assert.deepEqual({ width: gif.width, height: gif.height, frames: gif.frames }, { width: 200, height: 200, frames: frames.length });
  sender.close();
  assert.doesNotMatch(room.server.output(), /panicked/);
  return gif.pixels[0];
}

e2e('progressive, greyscale and CMYK JPEGs are accepted and look like the baseline RGB frame', async (t, h) => {
  const room = await openRoom(h);
  // The reference: the GIF the server makes of f-1.jpg itself, which all three re-encode.
  const reference = await acceptedCase(room, [F1]);

  await step(t, room, 'progressive: the same pixels as the baseline frame', async (st) => {
    const d = compare(await acceptedCase(room, [PROGRESSIVE]), reference);
    st.diagnostic(`mean |Δ| per channel ${d.rgb.toFixed(2)}`);
    assert.ok(d.rgb < 1, `jpegtran -progressive is lossless; mean difference ${d.rgb}`);
  });
  await step(t, room, 'greyscale: grey pixels with the baseline frame\'s brightness', async (st) => {
    const d = compare(await acceptedCase(room, [GREY]), reference);
    st.diagnostic(`mean |Δ luma| ${d.luma.toFixed(2)}, largest R/G/B spread ${d.spread}`);
    assert.equal(d.spread, 0, 'every pixel is grey');
    assert.ok(d.luma < 12, `brightness follows the original; mean luma difference ${d.luma}`);
  });
  await step(t, room, 'CMYK (Adobe, inverted): the colours of the baseline frame, not their negative', async (st) => {
    const d = compare(await acceptedCase(room, [CMYK]), reference);
    st.diagnostic(`mean |Δ| per channel ${d.rgb.toFixed(2)}, mean |Δ luma| ${d.luma.toFixed(2)}`);
    assert.ok(d.rgb < 12, `mean difference ${d.rgb} per channel (an inverted or uncorrected decode is far off)`);
  });
  await step(t, room, 'one clip mixing progressive, greyscale, CMYK and baseline frames', async () => {
    await acceptedCase(room, [PROGRESSIVE, GREY, CMYK, F2, F3]);
  });
});

// ---- 4. events nobody listens to -----------------------------------------------------------------

e2e('unknown events are ignored: the socket stays connected and can still send a clip', async (t, h) => {
  const room = await openRoom(h);
  const before = await snapshot(room);
  const sender = await h.client(room.url, { name: 'odd-events' });
  // Without an ack, with binary, with the names of the server's own events, and many of them:
  // only `message` costs rate-limit tokens.
  for (let i = 0; i < 20; i += 1) sender.socket.emit('nope', { i });
  sender.socket.emit('nope', F1, { frames: [F1] });
  sender.socket.emit('messageack', { key: 'forged' });
  sender.socket.emit('messageerror', { code: 'forged' });
  sender.socket.emit('welcome', {});
  sender.socket.emit('messages', []);
  // With an ack: nobody answers it (by the marker of assertNothingHappened below, after a
  // round trip on the sender's connection).
  const answered = [];
  sender.socket.emit('nope', { frames: [F1] }, (...reply) => answered.push(['nope', reply]));
  sender.socket.emit('MESSAGE', { message: 'x', frames: [F1] }, (...reply) => answered.push(['MESSAGE', reply]));
  await roundTrip(sender.socket);
  assert.equal(sender.socket.connected, true, 'still connected');
  assert.deepEqual(sender.received.messageerror, [], 'no messageerror for an unknown event');
  assert.deepEqual(sender.received.messageack, [], 'no messageack for an unknown event');
  await assertNothingHappened(room, before);
  assert.deepEqual(answered, [], 'nobody answers an unknown event\'s ack');

  // The same socket can still send a clip; and the server serves the others.
  const broadcast = once(room.observer.socket, 'message', WAIT_MS, (clip) => clip.author.id === sender.welcome.you.id);
  const clip = await sendGoodClip(sender.socket, { id: 'after-unknown', message: 'after', frames: loadFrames() });
  assert.equal((await broadcast).key, clip.key);
  await assertStillServes(room);
});

// ---- 5. malformed packets on a raw WebSocket -----------------------------------------------------

/**
 * A raw Engine.IO v4 WebSocket: reads the open packet and, with `join`, connects the default
 * namespace and waits for `40{"sid"…}`, `welcome` and `messages`. `packets` lists every frame
 * received (text as strings, binary as Buffers); `closed` resolves on close.
 */
async function rawSocket(url, { join = true } = {}) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
  const raw = { ws, packets: [], isClosed: false };
  ws.on('message', (data, isBinary) => raw.packets.push(isBinary ? data : data.toString('utf8')));
  ws.on('error', () => {}); // a dropped connection shows up as `close`
  raw.closed = new Promise((resolveClose) => ws.once('close', (code) => { raw.isClosed = true; resolveClose(code); }));
  await new Promise((resolveOpen, reject) => { ws.once('open', resolveOpen); ws.once('error', reject); });
  const text = () => raw.packets.filter((p) => typeof p === 'string');
  await eventually(() => text().some((p) => p.startsWith('0{')), 'the Engine.IO open packet');
  assert.match(text()[0], /^0\{"sid":/, 'the first packet is the open packet');
  if (join) {
    ws.send('40');
    await eventually(() => text().some((p) => p.startsWith('42["messages"')), 'welcome and messages');
    const order = text().map((p) => p.slice(0, 12));
    const connected = order.findIndex((p) => p.startsWith('40{"sid":'));
    const welcome = order.findIndex((p) => p.startsWith('42["welcome"'));
    const messages = order.findIndex((p) => p.startsWith('42["messages'));
    assert.ok(connected > 0 && connected < welcome && welcome < messages, `40{sid} then welcome then messages: ${JSON.stringify(order)}`);
  }
  raw.mark = raw.packets.length;
  return raw;
}

/** Text packets received since `rawSocket` returned. */
const since = (raw) => raw.packets.slice(raw.mark).filter((p) => typeof p === 'string');
/** The ack reply to `id`, parsed, or undefined. */
const ackReply = (raw, id) => {
  const packet = since(raw).find((p) => p.startsWith(`43${id}[`));
  return packet && JSON.parse(packet.slice(`43${id}`.length));
};
const messageErrors = (raw) => since(raw)
  .filter((p) => p.startsWith('42["messageerror"'))
  .map((p) => JSON.parse(p.slice(2))[1]);

const PROBE_ACK = 77;
const placeholder = (num) => JSON.stringify(['message', { id: ID, frames: [{ _placeholder: true, num }] }]);

const RAW_CASES = [
  // Framing the server cannot parse: that connection is closed.
  { what: 'cut-off JSON: 42[', send: ['42['], closes: true },
  { what: 'event data that is not an array: 42"x"', send: ['42"x"'], closes: true },
  { what: 'an event name that is a number: 42[1,2]', send: ['42[1,2]'], closes: true },
  { what: 'an unknown Socket.IO packet type: 4Z', send: ['4Z'], closes: true },
  { what: 'an unknown Engine.IO packet type: 9', send: ['9'], closes: true },
  { what: 'an empty text frame', send: [''], closes: true },
  { what: 'an empty binary frame', send: [Buffer.alloc(0)], closes: true },
  { what: 'a non-UTF-8 binary frame with no binary packet pending', send: [Buffer.from([0xFF, 0xFE, 0xC3, 0x28, 0x00])], closes: true },
  { what: 'a text frame that is not UTF-8', send: [{ text: Buffer.from([0x34, 0x32, 0xFF, 0xFE, 0xC3, 0x28]) }], closes: true },
  { what: 'a negative ack id: 42-1[…]', send: ['42-1["message",{"frames":["x"]}]'], closes: true },
  { what: 'a binary event with no attachment count: 45-[…]', send: [`45-${JSON.stringify(['message', { _placeholder: true, num: 0 }])}`], closes: true },
  { what: 'a binary event announcing 1 attachment, then a text packet instead of it', send: [`451-${placeholder(0)}`, '42["message","x"]'], closes: true },
  { what: 'a binary event announcing 99999 attachments', send: [`499999-${placeholder(0)}`], closes: true },
  { what: 'a binary event announcing 65 attachments (the limit is 64)', send: [`4565-${placeholder(0)}`], closes: true },
  // socketioxide takes attachments in order and ignores `num` (the JS parser refuses a num
  // out of range): a PNG attachment shows which one a placeholder got, and nothing is stored.
  {
    what: 'a placeholder pointing past the attachments (num 5 of 1) gets the one attachment',
    send: [`451-1${placeholder(5)}`, PNG_1x1],
    closes: false,
    expect: (raw) => {
      assert.equal(ackReply(raw, 1)?.[0]?.error?.code, 'bad_frame', `answered as the PNG attachment: ${JSON.stringify(since(raw)).slice(0, 300)}`);
      assert.deepEqual(messageErrors(raw).map((e) => [e.id, e.code]), [[ID, 'bad_frame']]);
    },
  },
  {
    what: 'a placeholder whose num is a string',
    send: [`451-1${placeholder('0')}`, PNG_1x1],
    closes: false,
    expect: (raw) => assert.equal(ackReply(raw, 1)?.[0]?.error?.code, 'invalid_payload'),
  },
  {
    // The first (a refused PNG) may or may not be answered before the connection drops.
    what: 'two binary frames where one was announced',
    send: [`451-1${placeholder(0)}`, PNG_1x1, PNG_1x1],
    closes: true,
    expect: (raw) => assert.ok(messageErrors(raw).every((e) => e.code === 'bad_frame'), JSON.stringify(messageErrors(raw))),
  },
  { what: 'an upgrade packet on a websocket: 5', send: ['5'], closes: true },
  { what: 'a pong to a probe nobody sent: 3probe', send: ['3probe'], closes: true },

  // Well-framed packets with odd contents: answered or ignored, and the connection stays open.
  { what: 'a connect to an unknown namespace: 40/nope,', send: ['40/nope,'], closes: false, expect: (raw) => assert.ok(since(raw).some((p) => p.startsWith('44/nope,{')), 'a connect error for /nope') },
  { what: 'an ack nobody asked for: 431[…]', send: ['431[{"ok":true}]'], closes: false },
  { what: 'a ping from the client: 2', send: ['2'], closes: false },
  { what: 'an event name of 4 MB', send: [`421["${'a'.repeat(4_000_000)}",1]`], closes: false, expect: (raw) => assert.equal(ackReply(raw, 1), undefined, 'no ack for an unknown event') },
  {
    what: '`message` with no argument',
    send: ['421["message"]'],
    closes: false,
    expect: (raw) => assert.equal(ackReply(raw, 1)?.[0]?.error?.code, 'invalid_payload'),
  },
  {
    what: 'a placeholder in a plain (non-binary) event',
    send: [`421${placeholder(0)}`],
    closes: false,
    expect: (raw) => assert.equal(ackReply(raw, 1)?.[0]?.error?.code, 'invalid_payload'),
  },
  {
    what: 'JSON nested 100,000 deep',
    send: [`421["message",${'['.repeat(100_000)}${']'.repeat(100_000)}]`],
    closes: false,
    expect: (raw) => assert.equal(ackReply(raw, 1)?.[0]?.error?.code, 'invalid_payload'),
  },
  {
    what: 'an ack id of 2^53 - 1 (the largest a JavaScript client sends) is acked',
    send: ['429007199254740991["message",{"id":"big-ack","frames":["x"]}]'],
    closes: false,
    expect: (raw) => {
      assert.equal(ackReply(raw, '9007199254740991')?.[0]?.error?.code, 'bad_frame');
      assert.deepEqual(messageErrors(raw).map((e) => [e.id, e.code]), [['big-ack', 'bad_frame']]);
    },
  },
  ...['9223372036854775808', '18446744073709551615', '123456789012345678901234567890'].map((id) => ({
    what: `an ack id of ${id} (over i64): handled without an ack reply`,
    send: [`42${id}["message",{"id":"huge-ack","frames":["x"]}]`],
    closes: false,
    expect: (raw) => {
      assert.deepEqual(messageErrors(raw).map((e) => [e.id, e.code]), [['huge-ack', 'bad_frame']]);
      assert.ok(!since(raw).some((p) => p.startsWith('43')), `no ack reply: ${JSON.stringify(since(raw)).slice(0, 300)}`);
    },
  })),

  // Before the namespace is joined.
  { what: 'a non-UTF-8 binary frame before any text packet', join: false, send: [Buffer.from([0xFF, 0x00, 0x80, 0xC3])], closes: true },
  { what: 'an event before connecting the namespace', join: false, send: ['42["message",{"frames":["x"]}]'], closes: true },
];

/** Sends the case's frames on a fresh raw socket; asserts whether it closes, and what it was answered. */
async function rawCase(room, { send, closes, expect, join = true }) {
  const before = await snapshot(room);
  const raw = await rawSocket(room.url, { join });
  for (const frame of send) {
    if (frame.text) raw.ws.send(frame.text, { binary: false });
    else raw.ws.send(frame);
  }
  if (closes) {
    let timer;
    const timeout = new Promise((resolveTimeout) => { timer = setTimeout(resolveTimeout, WAIT_MS, 'timeout'); });
    const outcome = await Promise.race([raw.closed, timeout]);
    clearTimeout(timer);
    assert.notEqual(outcome, 'timeout', `the server closes the connection; got ${JSON.stringify(since(raw)).slice(0, 300)}`);
    await assertNothingHappened(room, before);
    expect?.(raw);
  } else {
    await assertNothingHappened(room, before);
    assert.equal(raw.isClosed, false, 'the connection stays open');
    expect?.(raw);
    // Still served: an invalid `message` with an ack is answered.
    raw.ws.send(`42${PROBE_ACK}["message","probe"]`);
    await eventually(() => ackReply(raw, PROBE_ACK), 'the probe\'s ack reply');
    assert.equal(ackReply(raw, PROBE_ACK)[0].error.code, 'invalid_payload');
  }
  assert.equal(messageErrors(raw).some((e) => e.code === 'internal'), false, 'no `internal` error');
  raw.ws.terminate();
  await assertStillServes(room);
}

e2e('malformed Socket.IO and Engine.IO packets: no crash, nothing stored, the server goes on', async (t, h) => {
  const room = await openRoom(h);
  for (const rawCaseSpec of RAW_CASES) {
    const how = rawCaseSpec.closes ? 'closes that connection' : 'keeps the connection';
    await step(t, room, `${rawCaseSpec.what}: ${how}`, () => rawCase(room, rawCaseSpec));
  }
});

// ---- 6. memory under a few hundred hostile messages ---------------------------------------------

/** Refusals for the memory test: [payload, code]. Every path the server has to say no by. */
const FLOOD_PAYLOADS = [
  ['not an object', 'invalid_payload'],
  [{ id: { a: 1 }, message: 'x', frames: [F1] }, 'invalid_payload'],
  [{ message: null, frames: [F1] }, 'invalid_payload'],
  [{ message: '', frames: [F1, [F2]] }, 'invalid_payload'],
  [{ message: '', frames: Array(10_000).fill('x') }, 'bad_frame_count'],
  [{ message: '', frames: [...FRAMES, F1] }, 'bad_frame_count'],
  [{ message: '', frames: [noise(300 * KiB, 7)] }, 'frame_too_large'],
  [{ message: 'y'.repeat(251), frames: [F1] }, 'text_too_long'],
  [{ message: '', frames: [dataUri(PNG_1x1, 'image/png')] }, 'bad_frame'],
  [{ message: '', frames: ['data:image/jpeg;base64,###'] }, 'bad_frame'],
  [{ message: '', frames: [...FRAMES.slice(0, 9), decoderPanicFrame(F1)] }, 'bad_frame'],
  [{ message: '', frames: [...FRAMES.slice(0, 9), F3.subarray(0, 2000)] }, 'bad_frame'],
  [{ message: '', frames: FRAMES.map((f) => patchDimensions(f, 65535, 65535)) }, 'bad_dimensions'],
  [{ message: '', frames: [forgeSize(PROGRESSIVE, 65535, 65535)] }, 'bad_dimensions'],
  [{ message: '', frames: [F1, F2, patchDimensions(F3, 100, 100)] }, 'bad_dimensions'],
];
/** A whole message over 3 MiB: ten 300 KiB data URIs. Sent by a few sockets only. */
const OVER_3_MIB = [{ message: '', frames: FRAMES.map(() => dataUri(noise(250 * KiB, 3))) }, 'frame_too_large'];

const ROUNDS = 2;
const SOCKETS_PER_ROUND = 24;
const BATCH = 12; // sockets sending at once
const PER_SOCKET = 6; // the sixth is over the burst of 5: rate_limited (unless refused sooner)
const RAW_PER_ROUND = 24;
const RSS_BOUND = 64 * MiB;

/**
 * One round of the flood: SOCKETS_PER_ROUND official clients sending PER_SOCKET refusals each
 * (a few of them over 3 MiB), then RAW_PER_ROUND raw connections each sending one framing
 * error of section 5. Returns how many hostile messages were sent; counts replies in `tally`.
 */
async function floodRound(h, url, round, tally) {
  let sent = 0;
  for (let batch = 0; batch < SOCKETS_PER_ROUND; batch += BATCH) {
    await Promise.all(Array.from({ length: BATCH }, async (_, k) => {
      const n = round * SOCKETS_PER_ROUND + batch + k;
      const client = await h.client(url, { name: `flood-${n}` });
      const picks = Array.from({ length: PER_SOCKET }, (_, j) =>
        (n % 12 === 0 && j === 0 ? OVER_3_MIB : FLOOD_PAYLOADS[(n * PER_SOCKET + j) % FLOOD_PAYLOADS.length]));
      sent += picks.length;
      const replies = await Promise.all(picks.map(([payload]) => client.socket.timeout(WAIT_MS).emitWithAck('message', payload)));
      replies.forEach((reply, j) => {
        const code = reply?.error?.code;
        tally[code] = (tally[code] ?? 0) + 1;
        assert.equal(reply?.ok, false, `flood ${n}/${j}: ${JSON.stringify(reply).slice(0, 200)}`);
        // The case's code, or rate_limited (the bucket), or busy (the encoder queue).
        assert.ok([picks[j][1], 'rate_limited', 'busy'].includes(code), `flood ${n}/${j}: expected ${picks[j][1]}, got ${code}`);
      });
      client.close();
    }));
  }
  const garbage = RAW_CASES.filter((c) => c.closes && (c.join ?? true));
  await Promise.all(Array.from({ length: RAW_PER_ROUND }, async (_, k) => {
    const raw = await rawSocket(url);
    for (const frame of garbage[(round * RAW_PER_ROUND + k) % garbage.length].send) {
      if (frame.text) raw.ws.send(frame.text, { binary: false });
      else raw.ws.send(frame);
    }
    sent += 1;
    let timer;
    await Promise.race([raw.closed, new Promise((r) => { timer = setTimeout(r, WAIT_MS); })]);
    clearTimeout(timer);
    assert.equal(raw.isClosed, true, 'the garbage closed the connection');
    raw.ws.terminate();
  }));
  return sent;
}

e2e('memory stays bounded under a few hundred hostile messages', async (t, h) => {
  const room = await openRoom(h);
  const pid = room.server.process.pid;
  const warmUp = await assertStillServes(room);
  const before = await snapshot(room);
  assert.deepEqual(before.replay, [warmUp.key]);
  const rssAfter = [rss(pid)];

  const tally = {};
  let sent = 0;
  for (let round = 0; round < ROUNDS; round += 1) {
    sent += await floodRound(h, room.url, round, tally);
    rssAfter.push(rss(pid));
  }
  // Nothing got through.
  await assertNothingHappened(room, before);
  // And one frame over the transport limit; disconnectedCase ends with one good clip.
  const good = await disconnectedCase(t, room, { message: 'huge', frames: [Buffer.alloc(64 * MiB, 0xFF)] });
  sent += 1;
  rssAfter.push(rss(pid));

  const [base, ...rest] = rssAfter;
  t.diagnostic(`${sent} hostile messages; replies by code: ${JSON.stringify(tally)}`);
  t.diagnostic(`server VmRSS: ${mib(base)} after the warm-up clip; ${rest.slice(0, ROUNDS).map((r, i) => `${mib(r)} after round ${i + 1}`).join(', ')}; ${mib(rest[ROUNDS])} after the 64 MiB frame (${mib(Math.max(...rest) - base)} more at most)`);
  assert.ok(sent >= 300, `a few hundred hostile messages (${sent})`);
  for (const r of rest) assert.ok(r - base < RSS_BOUND, `RSS grew by ${mib(r - base)}, bound ${mib(RSS_BOUND)}`);

  // Of everything sent, only the good clips made it: the warm-up, the markers of the checks
  // and the one after the 64 MiB frame, each from a fresh client of assertStillServes.
  const seen = room.observer.received.message;
  assert.ok(seen.every((clip) => clip.id === 'after' && clip.message === 'after'), `the observer saw only the good clips: ${JSON.stringify(seen.map((clip) => clip.message))}`);
  assert.equal(seen[0].key, warmUp.key);
  assert.equal(seen.at(-1).key, good.key);
  assert.deepEqual(await replayKeys(room.url), seen.map((clip) => clip.key).slice(-REPLAY));
  assert.equal(await clipsStored(room.url), seen.length);
});
