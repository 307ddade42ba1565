// Faults and abuse (SPEC §3, §5, §6) against the real server: a client flooding `message`
// next to well-behaved ones, a crash loop of kill -9 mid-stream on one data dir, a live
// viewer whose TCP connection stops being read, and a stop while a long-poll hangs on.
//
// Every check is on outcomes, never on timings; the few durations used (how long the flood
// took, how long the stall lasted) only loosen a bound, never tighten it:
//   - flood: the flooder's ok acks fit the token bucket (5 in a burst, one back every 4 s) for
//     however long the flood took, every other reply is `rate_limited`, and the others (a
//     well-behaved sender and an observer) see exactly the accepted clips, all stored;
//   - crash loop: after every kill -9 the store opens again, every clip ever acked is
//     replayed (with --replay large enough to hold them all) and served byte for byte as a
//     GIF that decodes, and every replayed clip has its GIF (clip and GIF stored together);
//   - stalled viewer: a raw WebSocket viewer that stops reading while 20 streamers send
//     near-64 KiB frames costs the server one pending frame of memory (live frames are
//     volatile), still gets every chat message and ack once it reads again, and a healthy
//     viewer keeps receiving every streamer and every chat clip meanwhile;
//   - a repeated live:join sends nothing again (it would re-send every cached frame);
//   - SIGTERM with a long-poll open on an Engine.IO session that has no socket (closing the
//     sockets cannot answer it) still exits cleanly, after a bounded wait, keeping the clips.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { get as httpGet } from 'node:http';
import WebSocket from 'ws';
import {
  e2e, expectNoEvent, eventually, sendGoodClip, loadFrames, padJpeg, decodeGif,
  metricsText, metricValue, clipsStored, replayKeys, WAIT_MS,
} from './helpers.mjs';

const FRAMES = loadFrames();
const KiB = 1024;
const MiB = 1024 * KiB;

// ---- 1. a flooder next to well-behaved clients ---------------------------------------------

/** SPEC §5 / src/rate_limit.rs: a bucket of 5, one token back every 4 s. */
const BURST = 5;
const REFILL_MS = 4000;
const FLOOD = 200;

e2e('a flooding socket is rate limited alone: the others are served, and see exactly the accepted clips', async (t, h) => {
  const server = await h.server();
  const observer = await h.client(server.url, { name: 'observer' });
  const flooder = await h.client(server.url, { name: 'flooder' });
  const polite = await h.client(server.url, { name: 'polite' });

  // FLOOD emits of ten good frames, as fast as the client can queue them, each with an ack.
  const started = Date.now();
  const flood = new Promise((resolveAll, reject) => {
    const out = new Array(FLOOD);
    let left = FLOOD;
    for (let i = 0; i < FLOOD; i += 1) {
      flooder.socket.timeout(60_000).emit('message', { id: `flood-${i}`, message: `flood ${i}`, frames: FRAMES }, (error, reply) => {
        if (error) { reject(new Error(`flood ${i}: no ack (${error.message})`)); return; }
        out[i] = reply;
        left -= 1;
        if (left === 0) resolveAll(out);
      });
    }
  });
  // …while the well-behaved client sends one clip (emitted right after the FLOOD emits).
  const [replies, politeClip] = await Promise.all([
    flood,
    sendGoodClip(polite.socket, { id: 'polite-1', message: 'just one', frames: FRAMES }),
  ]);
  const elapsedMs = Date.now() - started;

  const accepted = replies.filter((reply) => reply.ok === true).map((reply) => reply.message);
  const refused = replies.filter((reply) => reply.ok !== true);
  const ceiling = BURST + Math.floor(elapsedMs / REFILL_MS) + 1;
  t.diagnostic(`flood: ${accepted.length} ok, ${refused.length} refused of ${FLOOD} in ${elapsedMs} ms (ceiling ${ceiling})`);
  assert.ok(accepted.length >= BURST, `the first ${BURST} (a full bucket) are accepted, got ${accepted.length}`);
  assert.ok(accepted.length <= ceiling, `at most ${BURST} + 1 per 4 s (+1 slack) = ${ceiling} accepted in ${elapsedMs} ms, got ${accepted.length}`);
  const codes = [...new Set(refused.map((reply) => reply.error?.code))];
  assert.deepEqual(codes, ['rate_limited'], `every refusal is rate_limited: ${JSON.stringify(refused.slice(0, 3))}`);
  assert.equal(flooder.received.messageerror.length, refused.length, 'one messageerror per refusal');
  assert.ok(flooder.received.messageerror.every((e) => e.code === 'rate_limited'));
  assert.equal(flooder.socket.connected, true, 'the flooder stays connected');

  // The observer gets exactly the accepted clips: the flooder's ok ones and the polite one.
  const expected = [...accepted.map((clip) => clip.key), politeClip.key].sort();
  await eventually(() => observer.received.message.length >= expected.length,
    `${expected.length} broadcasts at the observer (has ${observer.received.message.length})`);
  await expectNoEvent(observer.socket, 'message');
  assert.deepEqual(observer.received.message.map((clip) => clip.key).sort(), expected, 'observer saw exactly the accepted clips');
  assert.ok(observer.received.message.some((clip) => clip.key === politeClip.key && clip.author.name === 'polite'));
  // The polite client sees the flooder's accepted clips, the flooder sees the polite one.
  await eventually(() => polite.received.message.length >= accepted.length, 'the flooder\'s clips at the polite client');
  assert.deepEqual(polite.received.message.map((clip) => clip.key).sort(), accepted.map((clip) => clip.key).sort());
  await eventually(() => flooder.received.message.some((clip) => clip.key === politeClip.key), 'the polite clip at the flooder');

  const metrics = await metricsText(server.url);
  assert.equal(metricValue(metrics, 'loopchat_clips_stored'), expected.length, 'loopchat_clips_stored = accepted clips');
  assert.equal(metricValue(metrics, 'loopchat_clips_accepted_total'), expected.length);
  assert.equal(metricValue(metrics, 'loopchat_clips_rejected_total', { code: 'rate_limited' }), refused.length);
  assert.deepEqual((await replayKeys(server.url)).sort(), expected.slice(-10), 'the replay is the newest accepted clips');
});

// ---- 2. a crash loop ----------------------------------------------------------------------

const KILLS = 8;
const SENDERS = 6;
/** Larger than anything this test stores, so the replay holds every clip. */
const BIG_REPLAY = '100000';

e2e('a crash loop of kill -9 mid-stream loses no acked clip and leaves no clip without its GIF', async (t, h) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'loopchat-faults-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  /** Every clip whose ack said ok, by key. */
  const acked = new Map();
  /** The GIF bytes first served for each acked key, to compare later restarts with. */
  const served = new Map();
  let unackedStored = 0;
  const rounds = [];

  for (let round = 0; ; round += 1) {
    const server = await h.server({ dataDir, args: ['--replay', BIG_REPLAY] });
    // The store opened: the server listens and answers /healthz.
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200, `round ${round}: /healthz after restart`);

    const replay = await replayKeys(server.url);
    assert.equal(new Set(replay).size, replay.length, `round ${round}: no key replayed twice`);
    assert.deepEqual([...replay].sort(), replay, `round ${round}: replay is oldest first`);
    const replayed = new Set(replay);
    const missing = [...acked.keys()].filter((key) => !replayed.has(key));
    assert.deepEqual(missing, [], `round ${round}: every acked clip is replayed after kill -9`);
    unackedStored = replay.length - acked.size;
    assert.equal(await clipsStored(server.url), replay.length, `round ${round}: loopchat_clips_stored = replayed clips`);

    // Every replayed clip has its GIF; acked ones are served unchanged, and decode the first
    // time they are fetched (right after the crash that followed their ack).
    for (const key of replay) {
      const response = await fetch(`${server.url}/clips/${key}.gif`);
      assert.equal(response.status, 200, `round ${round}: GET /clips/${key}.gif`);
      const body = Buffer.from(await response.arrayBuffer());
      const clip = acked.get(key);
      if (!clip) continue;
      if (served.has(key)) {
        assert.ok(served.get(key).equals(body), `round ${round}: ${key}.gif unchanged since it was first served`);
        continue;
      }
      assert.equal(body.length, clip.bytes, `round ${round}: ${key}.gif is Clip.bytes long`);
      const gif = decodeGif(body);
      assert.equal(gif.frames, clip.frames, `round ${round}: ${key}.gif frame count`);
      assert.equal(gif.width, clip.width);
      assert.equal(gif.height, clip.height);
      served.set(key, body);
    }
    assert.doesNotMatch(server.output(), /panicked/, `round ${round}: no panic in the server log`);

    if (round === KILLS) {
      // The last start: the server still takes clips, after all the old ones.
      const client = await h.client(server.url, { name: 'survivor' });
      assert.deepEqual(client.replay.map((clip) => clip.key), replay);
      const last = await sendGoodClip(client.socket, { message: 'after the crash loop', frames: FRAMES.slice(0, 2) });
      assert.ok(replay.every((key) => key < last.key), 'keys stay time-ordered across restarts');
      const exit = await server.stop();
      assert.equal(exit.code, 0, `clean stop at the end: ${JSON.stringify(exit)}`);
      break;
    }

    // Stream clips from several sockets (each has its own 5-clip burst) until kill -9.
    const clients = [];
    for (let s = 0; s < SENDERS; s += 1) clients.push(await h.client(server.url, { name: `r${round}-s${s}` }));
    let killed = false;
    let ackedThisRound = 0;
    const unexpected = [];
    const stream = async (client, s) => {
      for (let i = 0; !killed; i += 1) {
        const frames = FRAMES.slice((s + i) % 7, (s + i) % 7 + 1 + ((s + i) % 4)); // 1 to 4 frames
        let reply;
        try {
          reply = await client.socket.timeout(WAIT_MS).emitWithAck('message', { id: `r${round}-s${s}-${i}`, message: `round ${round}`, frames });
        } catch {
          return; // the server died under it (or never answered): nothing was promised
        }
        if (reply.ok) {
          acked.set(reply.message.key, reply.message);
          ackedThisRound += 1;
        } else if (reply.error?.code === 'rate_limited') {
          return; // this socket's burst is spent
        } else {
          unexpected.push(reply);
          return;
        }
      }
    };
    const delayMs = 50 + Math.floor(Math.random() * 551);
    const streams = clients.map(stream);
    await sleep(delayMs);
    const exit = await server.kill9();
    killed = true;
    assert.equal(exit.signal, 'SIGKILL');
    await Promise.all(streams);
    for (const client of clients) client.close();
    assert.deepEqual(unexpected, [], `round ${round}: only ok or rate_limited replies`);
    rounds.push(`${delayMs} ms → ${ackedThisRound} acked`);
  }

  t.diagnostic(`kill -9 after: ${rounds.join('; ')}`);
  t.diagnostic(`${acked.size} acked clips all survived ${KILLS} kill -9; ${unackedStored} stored clips were never acked (killed between store and ack)`);
  assert.ok(acked.size >= KILLS, `the loop did stream clips (${acked.size} acked)`);
});

// ---- 3. a stalled live viewer -------------------------------------------------------------

/** Enough streamers that a stalled viewer's kernel buffers fill within seconds, long before
 *  Engine.IO's next ping (25 s) would find it unresponsive. */
const STREAMERS = 20;
/** Near the 64 KiB live limit (src/live/frame.rs MAX_FRAME_BYTES), so each queued frame weighs. */
const LIVE_FRAME_BYTES = 64 * KiB - 64;
/** Streamers send a little slower than 1 fps so timer jitter never trips the 900 ms gap. */
const STREAM_EVERY_MS = 1100;
const WARM_UP_MS = 2200;
const STALL_MS = 8000;

/** The server's resident set size, in bytes. */
function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * KiB;
}

const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

/**
 * A Socket.IO viewer spoken by hand over a raw WebSocket (Engine.IO v4), so its TCP socket
 * can be paused: it answers pings only while it reads, counts `live:frame` packets and
 * their binary attachments, and keeps every text packet.
 */
async function rawViewer(url, name) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
  const viewer = {
    ws,
    open: undefined,
    texts: [],
    frames: 0,
    binaryBytes: 0,
    nextAck: 0,
    closed: false,
    id: undefined,
    connectedAt: Date.now(),
    /** Sends an event with an ack id and resolves with the ack's arguments. */
    async emitWithAck(event, ms = WAIT_MS) {
      const id = viewer.nextAck;
      viewer.nextAck += 1;
      const from = viewer.texts.length;
      ws.send(`42${id}${JSON.stringify([event])}`);
      const prefix = `43${id}[`;
      const reply = await eventually(() => viewer.texts.slice(from).find((text) => text.startsWith(prefix)), `ack ${id} of ${event}`, ms, 20);
      return JSON.parse(reply.slice(prefix.length - 1));
    },
  };
  ws.on('message', (data, isBinary) => {
    if (isBinary) { viewer.binaryBytes += data.length; return; }
    const text = data.toString('utf8');
    if (text === '2') { ws.send('3'); return; } // ping → pong
    if (text.startsWith('451-["live:frame"')) viewer.frames += 1;
    viewer.texts.push(text);
  });
  ws.on('close', () => { viewer.closed = true; });
  await new Promise((resolveOpen, reject) => { ws.once('open', resolveOpen); ws.once('error', reject); });
  await eventually(() => viewer.texts.find((text) => text.startsWith('0{')), 'the Engine.IO open packet');
  viewer.open = JSON.parse(viewer.texts.find((text) => text.startsWith('0{')).slice(1));
  ws.send(`40${JSON.stringify({ name })}`);
  await eventually(() => viewer.texts.some((text) => text.startsWith('42["messages"')), 'welcome and messages');
  viewer.id = JSON.parse(viewer.texts.find((text) => text.startsWith('40{')).slice(2)).sid;
  return viewer;
}

e2e('a live viewer that stops reading costs one frame of memory, misses no chat or ack, and slows nobody', async (t, h) => {
  // SPEC §3: live frames are volatile, so a viewer that does not keep up skips frames. The
  // server holds at most one pending frame per viewer, so its chat messages and acks, which
  // go through the socket's ordinary 128-packet buffer, are never crowded out by frames.
  const server = await h.server();
  const pid = server.process.pid;

  const stalled = await rawViewer(server.url, 'stalled');
  t.after(() => stalled.ws.terminate());
  const joinReply = await stalled.emitWithAck('live:join');
  assert.equal(joinReply[0].ok, true, `raw live:join ack: ${JSON.stringify(joinReply)}`);

  const healthy = await h.client(server.url, { name: 'healthy' });
  assert.equal((await healthy.socket.timeout(WAIT_MS).emitWithAck('live:join')).ok, true);
  const chatter = await h.client(server.url, { name: 'chatter' });
  const streamers = [];
  for (let s = 0; s < STREAMERS; s += 1) {
    const streamer = await h.client(server.url, { name: `streamer-${s}` });
    assert.equal((await streamer.socket.timeout(WAIT_MS).emitWithAck('live:join')).ok, true);
    streamers.push({ client: streamer, id: streamer.welcome.you.conn, frame: padJpeg(FRAMES[s % FRAMES.length], LIVE_FRAME_BYTES), sent: 0 });
  }

  // Every streamer sends a near-64 KiB frame about once a second until told to stop.
  let streaming = true;
  const streams = streamers.map(async (streamer, s) => {
    await sleep((s * STREAM_EVERY_MS) / STREAMERS);
    while (streaming) {
      streamer.client.socket.emit('live:frame', streamer.frame);
      streamer.sent += 1;
      await sleep(STREAM_EVERY_MS);
    }
  });

  // Warm-up: everyone reads, so the baseline includes ordinary streaming.
  await sleep(WARM_UP_MS);
  await eventually(() => stalled.frames > 0, 'frames at the viewer while it reads');
  const rss = { before: rssBytes(pid), peak: 0 };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      rss.peak = Math.max(rss.peak, rssBytes(pid));
      await sleep(100);
    }
  })();

  // Stall for STALL_MS: ~20 × 64 KiB a second is addressed to the viewer, several times what
  // the kernel buffers hold. Chat goes on meanwhile, and the viewer asks to leave the room.
  stalled.ws._socket.pause();
  const framesBeforeStall = stalled.frames;
  const chatClips = [];
  for (let i = 0; i < 3; i += 1) {
    await sleep(STALL_MS / 4);
    chatClips.push(await sendGoodClip(chatter.socket, { id: `chat-${i}`, message: `while someone stalls ${i}`, frames: FRAMES.slice(i, i + 3) }));
  }
  await sleep(STALL_MS / 4);
  const leaveAck = stalled.emitWithAck('live:leave', 30_000);
  await sleep(1000);
  streaming = false;
  await Promise.all(streams);
  sampling = false;
  await sampler;
  const addressed = streamers.reduce((total, streamer) => total + streamer.sent, 0) - framesBeforeStall;

  // The stalled viewer starves nobody: after the stall, each streamer's last frame still
  // reaches the healthy viewer. Volatile delivery keeps a viewer's latest frame, so a last
  // frame that the server relays is delivered; one the frame limit dropped (sent too soon
  // after the previous) is sent again a gap later. That frame is also the marker after
  // which every earlier frame has arrived. How many of the frames get through while a
  // viewer stalls is a time-dependent share, a figure of the load tool (phase d.).
  await Promise.all(streamers.map(async (streamer, s) => {
    const last = padJpeg(FRAMES[(s + 1) % FRAMES.length], LIVE_FRAME_BYTES);
    const arrived = () => healthy.events.some((e) => e.event === 'live:frame' && e.args[0].from === streamer.id
      && Buffer.from(e.args[1]).equals(last));
    await eventually(() => {
      if (arrived()) return true;
      streamer.client.socket.emit('live:frame', last);
      return false;
    }, `streamer-${s}'s last frame at the healthy viewer`, WAIT_MS, STREAM_EVERY_MS);
  }));
  const framesAtHealthy = healthy.events.filter((e) => e.event === 'live:frame');
  const perStreamer = streamers.map((streamer) => {
    const got = framesAtHealthy.filter((e) => e.args[0].from === streamer.id);
    return { sent: streamer.sent, got: got.length, sizes: got.map((e) => e.args[1].byteLength) };
  });
  t.diagnostic(`healthy viewer, frames got/sent per streamer (a share that depends on the machine's load): ${perStreamer.map((p) => `${p.got}/${p.sent}`).join(', ')}`);
  for (const [s, p] of perStreamer.entries()) {
    assert.ok(p.sizes.every((size) => size === LIVE_FRAME_BYTES), `streamer-${s}: frames arrive whole`);
  }
  for (const clip of chatClips) {
    assert.ok(healthy.received.message.some((m) => m.key === clip.key), `chat clip ${clip.id} reached the healthy viewer`);
  }
  assert.equal(healthy.socket.connected, true);

  // Memory: one pending frame and the WebSocket write buffer for the stalled viewer;
  // 8 MiB covers the allocator and ordinary traffic. Queueing the frames addressed to it
  // would take ~addressed × 64 KiB.
  const bound = 8 * MiB;
  t.diagnostic(`server RSS: before ${mib(rss.before)}, peak ${mib(rss.peak)}; growth ${mib(rss.peak - rss.before)} (bound ${mib(bound)}); ${addressed} frames, ${mib(addressed * LIVE_FRAME_BYTES)}, addressed to the stalled viewer`);
  assert.ok(rss.peak - rss.before <= bound, `RSS grew by ${mib(rss.peak - rss.before)}, more than ${mib(bound)}`);

  // Reading again, the viewer gets what it missed of the chat and its ack, and only as many
  // frames as the kernel buffers held plus the one pending: the rest were skipped. A ping
  // the server sent meanwhile is read and answered now, within Engine.IO's ping timeout
  // (pingInterval + pingTimeout of silence close a connection: 45 s by default, several
  // times this stall); a machine too slow for that fails on `closed` below, saying why.
  stalled.ws._socket.resume();
  assert.deepEqual(await leaveAck, [{ ok: true }], 'the live:leave sent while stalled is acked');
  for (const clip of chatClips) {
    await eventually(() => stalled.texts.some((text) => text.startsWith('42["message"') && text.includes(clip.key)), `chat clip ${clip.id} at the stalled viewer`);
  }
  assert.equal(stalled.closed, false, `the stalled viewer is still connected (closed after ${Date.now() - stalled.connectedAt} ms; the server closes a connection silent for pingInterval + pingTimeout, ${stalled.open.pingInterval} + ${stalled.open.pingTimeout} ms)`);
  const wmemMax = Number((await readFile('/proc/sys/net/ipv4/tcp_wmem', 'utf8')).trim().split(/\s+/)[2]);
  const rmemMax = Number((await readFile('/proc/sys/net/ipv4/tcp_rmem', 'utf8')).trim().split(/\s+/)[2]);
  const drained = stalled.frames - framesBeforeStall;
  const ceiling = Math.ceil((wmemMax + rmemMax) / LIVE_FRAME_BYTES) + STREAMERS;
  t.diagnostic(`stalled viewer: ${drained} frames arrived after the stall, of ${addressed} addressed to it (ceiling ${ceiling})`);
  assert.ok(drained <= ceiling, `the stalled viewer got ${drained} frames, more than its kernel buffers and one pending frame allow (${ceiling})`);
  assert.ok(drained < addressed, 'frames were skipped for the stalled viewer');
  await eventually(() => healthy.events.some((e) => e.event === 'live:left' && e.args[0].id === stalled.id), 'live:left for the stalled viewer');
});

e2e('joining the live room again sends nothing again: repeated live:join is no amplifier', async (t, h) => {
  const server = await h.server();
  const streamer = await h.client(server.url, { name: 'streamer' });
  assert.equal((await streamer.socket.timeout(WAIT_MS).emitWithAck('live:join')).ok, true);
  streamer.socket.emit('live:frame', FRAMES[0]);
  const viewer = await h.client(server.url, { name: 'viewer' });
  const cached = new Promise((resolveFrame) => viewer.socket.once('live:frame', resolveFrame));
  await eventually(async () => (await viewer.socket.timeout(WAIT_MS).emitWithAck('live:join')).ok && (await Promise.race([cached, sleep(200)])), 'the cached frame on the first join');
  const before = viewer.events.length;
  for (let i = 0; i < 20; i += 1) {
    const reply = await viewer.socket.timeout(WAIT_MS).emitWithAck('live:join');
    assert.equal(reply.ok, true, 'a repeated join is still acked');
  }
  await expectNoEvent(viewer.socket, 'live:frame');
  const after = viewer.events.slice(before).map((e) => e.event);
  assert.deepEqual(after.filter((event) => event === 'live:frame' || event === 'live:joined'), [], 'nothing sent again');
});

/**
 * GETs `url` on a connection of its own; resolves once the request is written, with its
 * local port and `done`, which settles with the body or the error.
 */
async function longPollOnOwnConnection(url) {
  let localPort;
  let written;
  const flushed = new Promise((resolveFlushed) => { written = resolveFlushed; });
  const done = new Promise((resolveDone) => {
    const request = httpGet(url, { agent: false }, (response) => {
      let body = '';
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => resolveDone(body));
      response.on('error', resolveDone);
    });
    request.on('error', (error) => { written(); resolveDone(error); });
    request.on('socket', (socket) => socket.on('connect', () => { localPort = socket.localPort; }));
    request.on('finish', () => written());
  });
  await flushed;
  return { localPort, done };
}

/**
 * Resolves once the server listening on `serverPort` has accepted the connection from
 * `clientPort` and read all that was sent on it: its end of the connection is established
 * and its receive queue empty (/proc/net/tcp; both ends on 127.0.0.1).
 */
async function serverHasRead(serverPort, clientPort) {
  const hex = (port) => port.toString(16).toUpperCase().padStart(4, '0');
  await eventually(async () => (await readFile('/proc/net/tcp', 'utf8')).split('\n').some((line) => {
    const [, local, remote, state, queues] = line.trim().split(/\s+/);
    return local === `0100007F:${hex(serverPort)}` && remote === `0100007F:${hex(clientPort)}`
      && state === '01' && queues?.endsWith(':00000000');
  }), `the server to read the request from port ${clientPort}`, WAIT_MS, 5);
}

e2e('a long-poll of a session with no socket cannot hold up a stop, and the clips stay', async (t, h) => {
  const server = await h.server();
  const a = await h.client(server.url, { name: 'alice' });
  const clip = await sendGoodClip(a.socket, { message: 'before the stop', frames: FRAMES.slice(0, 2) });
  a.close();

  // An Engine.IO session that never joined a namespace, as a client leaves one between its
  // disconnect and its close packet: closing the sockets does not answer its long-poll.
  const session = `${server.url}/socket.io/?EIO=4&transport=polling`;
  const { sid } = JSON.parse((await (await fetch(session)).text()).slice(1));
  const poll = `${session}&sid=${sid}`;
  assert.equal(await (await fetch(poll)).text(), '2', 'the first long-poll gets the first ping');
  await fetch(poll, { method: 'POST', body: '3' }); // pong: a healthy session
  const longPoll = await longPollOnOwnConnection(poll);
  // The server has read the GET (it can only be waiting on it then); the warning below
  // proves the stop saw it open.
  await serverHasRead(Number(new URL(server.url).port), longPoll.localPort);

  const exit = await server.stop();
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  assert.match(server.output(), /HTTP requests still open .* after the sockets closed/, 'the stop waited on the long-poll, then left it');
  await longPoll.done;
  const again = await h.server({ dataDir: server.dataDir });
  assert.deepEqual(await replayKeys(again.url), [clip.key]);
});
