#!/usr/bin/env node
// loopchat load tool: drives a real server over loopback with the official socket.io-client
// and reports latency, fan-out, throughput, live-room delivery and memory per connection.
//
// Why socket.io-client: it is the reference implementation of the protocol the browsers
// speak, so the server is measured against exactly what users run. One Node process
// handles thousands of sockets because every client is an event-loop callback, not a
// thread; the tool reports its own CPU time so a saturated generator is visible.
//
// It starts the server itself (release build by default) on 127.0.0.1 with a temporary
// data dir, touches nothing but 127.0.0.1, and stops by itself: every phase is bounded in
// count and time.
//
// Each figure comes with a baseline measured in the same run, on the same server and
// connections, so a reader can tell the server's share from the machine's and the tool's:
//   a./b. the transport floor: a `live:leave` round trip (acked at once, no work) with the
//         same 1,000 receivers connected;
//   c.    the encoder ceiling: cores / mean encode time, read from the server's /metrics
//         for the clips of this very phase;
//   d.    the generator's own event-loop delay p99: time a relayed frame waited in the
//         tool, not in the server;
//   f.    the same slow-disk load on a second server whose disk is not slowed;
//   g.    the bound itself: disk use against 3 × the unexpired clips' bytes + 64 MiB;
//   h.    the transport floor again (a `call:leave` round trip, acked at once) on the same
//         800 connections, and the generator's own event-loop delay p99.
//   i./j. two nodes on Redis behind nginx (SPEC §8): the same fan-out, ack latency and live
//         room as b., a. and d., measured on the single node and on the pair back to back,
//         with the transport round trip through nginx as the pair's floor.
//   k.    the SPEC's deadlines in cluster mode, which the tests wait for without timing them:
//         a clip answered `unavailable` within 5 s of Redis going down, every node
//         recovered within 10 s of it coming back, the answers to a burst in flight when
//         Redis is killed, and how late after `expires_at` a clip is gone (Redis's expiry).
//   l.    one address flooding the feed from many sockets, each a fresh identity, against
//         the per-address limits' defaults (SPEC §13): what an observer elsewhere sees, set
//         against the bucket's own bound (half of 40 at once, 40 a minute after).
//   m.    what the per-address limits cost: clip acks and accepted connections with the
//         defaults on, against the same load with them off (0), on one node and on two nodes
//         on Redis, interleaved; every sender from a loopback address of its own.
//
// Per-address limits (SPEC §13): a.–k. open up to 5,000 sockets and send hundreds of clips a
// minute, all from 127.0.0.1 (behind nginx, from nginx's address), which the defaults (64
// connections, 40 clips a minute an address) would refuse; so every server they start runs
// with both limits off (0), and the tool says so once. l. and m. run with the defaults.
//
// Times the suites used to assert, and now only wait for, are measured here too, never
// asserted: the live room's frame limit (d., a streamer sending five frames a second) and
// a stalled viewer's cost to the others (d.), presence coalescing while many connect (e.),
// and a call-signal burst against its token bucket (h.).
//
//   node tools/load.mjs            full run (the README's numbers)
//   node tools/load.mjs --smoke    the smallest configuration, run in CI so it cannot rot
//   node tools/load.mjs --only live   one phase: latency, throughput, live, memory, slowdisk,
//                                     soak, call, cluster, outage, flood or limits-cost
//                                     (cluster needs redis-server and nginx; outage and
//                                     limits-cost redis-server)
//   node tools/load.mjs --bin PATH    another build, e.g. last release's, for a before/after
// First: whatever the tool starts is stopped, and its folders removed, however it ends (a
// phase that fails or runs out of time, Ctrl-C): see tests/lib/cleanup.mjs.
import { ROOT } from '../tests/lib/cleanup.mjs';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { io } from 'socket.io-client';
import { slowDiskEnv } from './slow-fsync.mjs';
import { diskBytes } from './disk.mjs';
import { startNginx, startRedis } from '../tests/cluster/services.mjs';

const { values: options } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    bin: { type: 'string', default: process.env.LOOPCHAT_BIN ?? 'target/release/loopchat' },
    only: { type: 'string' },
  },
});

const FULL = {
  receivers: 1000, // a. and b.: clients connected while clips are sent
  latencyClips: 200, // a. and b.: clips sent one after another
  throughputSeconds: 10, // c.
  throughputInFlight: 16, // c.: clips awaiting their ack at any moment
  streamers: 20, // d.
  viewers: 500, // d.
  liveSeconds: 10, // d.
  idleConnections: 5000, // e.
  slowDiskSockets: 120, // f.: each at the rate limit, one clip every 4 s
  slowDiskSeconds: 30, // f.
  slowDiskFsyncMs: 400, // f.: added to every fsync
  soakSockets: 40, // g.: each at the rate limit
  soakSeconds: 300, // g.: for each TTL
  soakTtls: ['3s', '10m'], // g.
  callRooms: 200, // h.: each with CALL_SIZE sockets
  callSeconds: 10, // h.: each call renegotiates once a second, at its own offset
  outageRounds: 3, // k.: Redis stopped and started again, and killed, this many times each
  floodSockets: 50, // l.: from one address, each with a fresh identity (fewer than the cap, 64)
  floodSeconds: 60, // l.
  costClips: 200, // m.: clips timed on each server (and as many refused ones)
  costConnections: 500, // m.: connections opened on each server in a round
  costRounds: 10, // m.: rounds of connections, limits on and off alternating (short, so drift evens out)
};
const SMOKE = {
  receivers: 20, latencyClips: 10, throughputSeconds: 2, throughputInFlight: 4,
  streamers: 2, viewers: 5, liveSeconds: 3, idleConnections: 50,
  slowDiskSockets: 6, slowDiskSeconds: 8, slowDiskFsyncMs: 400,
  soakSockets: 8, soakSeconds: 10, soakTtls: ['3s'],
  callRooms: 5, callSeconds: 2, outageRounds: 1,
  floodSockets: 20, floodSeconds: 8, costClips: 10, costConnections: 100, costRounds: 2,
};
const config = options.smoke ? SMOKE : FULL;
// Every phase is cut off after this, whatever happens (the soak runs for longer on purpose).
const PHASE_LIMIT_MS = 120_000 + 1000 * config.soakSeconds * config.soakTtls.length;

const FRAMES = Array.from({ length: 10 }, (_, i) =>
  readFileSync(new URL(`../tests/fixtures/clip-synth/f-${i + 1}.jpg`, import.meta.url)));
const LIVE_FRAME = FRAMES[0];
// The server allows 5 clips in a burst per socket, so senders are many and short-lived.
const CLIPS_PER_SENDER = 5;
// The rate limit's refill: one clip per socket this often, sustained (SPEC §5).
const RATE_LIMIT_MS = 4000;
// f.: the ack deadline that counts, as users would feel it.
const ACK_DEADLINE_MS = 8000;
// How long a stopped server may take before it is killed (a frozen one ignores SIGTERM).
const STOP_LIMIT_MS = 20_000;

// ---- the server under test -------------------------------------------------------------

// SPEC §13's per-address limits; a build from before them (`--bin`) has neither flag, and
// then runs every phase as it is (l. shows what it lets through; m. has nothing to measure).
const ADDRESS_LIMITS = (spawnSync(options.bin, ['--help'], { encoding: 'utf8' }).stdout ?? '').includes('--max-connections-per-address');
const LIMITS_OFF = ADDRESS_LIMITS ? ['--max-connections-per-address', '0', '--clips-per-address-per-minute', '0'] : [];
// The defaults l. and m. run with (SPEC §13).
const CONNECTIONS_PER_ADDRESS = 64;
const CLIPS_PER_ADDRESS_PER_MINUTE = 40;

/** With `limits`, the per-address limits' defaults; without, both off (see the top). */
async function startServer({ env = {}, args = [], limits = false } = {}) {
  const dataDir = mkdtempSync(join(ROOT, 'loopchat-load-'));
  const child = spawn(options.bin, ['--bind', '127.0.0.1', '--port', '0', '--data-dir', dataDir, ...(limits ? [] : LIMITS_OFF), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
  });
  let startLimit;
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/listening on (http:\/\/\S+)/);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    startLimit = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('server did not start in 20 s'));
    }, 20_000);
  }).finally(() => clearTimeout(startLimit));
  return {
    url,
    pid: child.pid,
    dataDir,
    /** SIGTERM; SIGKILL if it has not exited after STOP_LIMIT_MS. Resolves to the seconds it took. */
    async stop() {
      const started = performance.now();
      const exited = new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        console.error(`server ${child.pid} still running ${STOP_LIMIT_MS} ms after SIGTERM; killing it`);
        child.kill('SIGKILL');
      }, STOP_LIMIT_MS);
      await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      return (performance.now() - started) / 1000;
    },
  };
}

function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]);
}

function cpuSeconds(pid) {
  // utime + stime, fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 a second here).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Sum and count of the server's encode_seconds histogram, from /metrics. */
async function encodeSeconds(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? NaN);
  return { sum: read('loopchat_encode_seconds_sum'), count: read('loopchat_encode_seconds_count') };
}

/**
 * The median of a /metrics histogram, as the upper bound of the bucket it falls in, and
 * the mean; NaN for a server that does not have the histogram.
 */
async function histogramMedian(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm'))]
    .map(([, le, count]) => ({ le: Number(le), count: Number(count) }));
  const count = Number(text.match(new RegExp(`^${name}_count (\\S+)$`, 'm'))?.[1] ?? NaN);
  const sum = Number(text.match(new RegExp(`^${name}_sum (\\S+)$`, 'm'))?.[1] ?? NaN);
  const median = buckets.find((bucket) => bucket.count >= count / 2)?.le ?? NaN;
  return { median, mean: sum / count };
}

// ---- clients ---------------------------------------------------------------------------

// Every socket passes its own sticky key, as the pages do (SPEC §8): behind nginx the
// sockets spread over the nodes; a node alone ignores it.
const RUN = Math.random().toString(36).slice(2, 8);

/**
 * A socket that got its `welcome`. `localAddress` picks the loopback address it comes from
 * (any of 127.0.0.0/8; 127.0.0.1 by default), `token` its identity (SPEC §10; without
 * one the server makes a fresh user id). A refused handshake rejects with the server's
 * `connect_error` (its message is the code, e.g. `too_many_connections`).
 */
async function connect(url, name, { localAddress, token } = {}) {
  const socket = io(url, {
    transports: ['websocket'], auth: token ? { name, token } : { name }, query: { lb: `${RUN}-${name}` }, forceNew: true, reconnection: false,
    ...(localAddress ? { localAddress } : {}),
  });
  await new Promise((resolve, reject) => {
    socket.once('welcome', resolve);
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
  return socket;
}

/**
 * `count` sockets on `url`, or, given a list of URLs, spread over them in turn;
 * `optionsOf(i)` gives the i-th socket's `connect` options.
 */
async function connectMany(url, count, prefix, optionsOf = () => ({})) {
  const urls = [url].flat();
  const sockets = [];
  // Batches keep the handshake burst from looking like a SYN flood to the kernel.
  for (let start = 0; start < count; start += 200) {
    const batch = Math.min(200, count - start);
    sockets.push(...await Promise.all(Array.from({ length: batch }, (_, i) => connect(urls[(start + i) % urls.length], `${prefix}${start + i}`, optionsOf(start + i)))));
  }
  return sockets;
}

const closeAll = (sockets) => sockets.forEach((socket) => socket.close());

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const clip = (text) => ({ message: text, frames: FRAMES });

async function withLimit(what, work) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${PHASE_LIMIT_MS} ms`)), PHASE_LIMIT_MS);
  });
  try {
    return await Promise.race([work(), limit]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- a. + b.: ack latency and fan-out with receivers connected ---------------------------

/**
 * Connects `config.receivers` receivers to `url`, measures the transport floor, then sends
 * `config.latencyClips` clips one after another and times each one's ack and its arrival at
 * the last receiver. `whileConnected()` runs with every receiver connected (e.g. to count
 * them on each node). Returns the raw figures.
 */
async function measureLatency(url, whileConnected = async () => undefined) {
  const receivers = await connectMany(url, config.receivers, 'receiver-');
  const arrivals = new Map(); // key -> [arrival times]
  for (const receiver of receivers) {
    receiver.on('message', (message) => {
      const now = performance.now();
      const times = arrivals.get(message.key) ?? [];
      times.push(now);
      arrivals.set(message.key, times);
    });
  }
  const connected = await whileConnected();
  const floorMs = [];
  const probe = await connect(url, 'floor-probe');
  for (let i = 0; i < config.latencyClips; i += 1) {
    const sent = performance.now();
    await probe.timeout(10_000).emitWithAck('live:leave');
    floorMs.push(performance.now() - sent);
  }
  probe.close();
  const ackMs = [];
  const fanOutMs = [];
  let sender;
  for (let i = 0; i < config.latencyClips; i += 1) {
    if (i % CLIPS_PER_SENDER === 0) {
      sender?.close();
      sender = await connect(url, `sender-${i}`);
    }
    const sent = performance.now();
    const reply = await sender.timeout(10_000).emitWithAck('message', clip(`latency ${i}`));
    if (!reply.ok) throw new Error(`clip refused: ${reply.error.code}`);
    ackMs.push(performance.now() - sent);
    const deadline = performance.now() + 10_000;
    while ((arrivals.get(reply.message.key)?.length ?? 0) < receivers.length && performance.now() < deadline) {
      await sleep(1);
    }
    const times = arrivals.get(reply.message.key) ?? [];
    if (times.length === receivers.length) fanOutMs.push(Math.max(...times) - sent);
    arrivals.delete(reply.message.key);
  }
  sender?.close();
  closeAll(receivers);
  return { floorMs, ackMs, fanOutMs, connected };
}

async function latencyAndFanOut(url) {
  const { floorMs, ackMs, fanOutMs } = await measureLatency(url);
  return {
    'a./b. baseline: transport round trip p50 ms': percentile(floorMs, 50),
    'a./b. baseline: transport round trip p99 ms': percentile(floorMs, 99),
    'a. ack latency p50 ms': percentile(ackMs, 50),
    'a. ack latency p99 ms': percentile(ackMs, 99),
    'b. fan-out to all receivers p50 ms': percentile(fanOutMs, 50),
    'b. fan-out to all receivers p99 ms': percentile(fanOutMs, 99),
    'b. clips fully delivered': `${fanOutMs.length}/${config.latencyClips}`,
  };
}

// ---- c.: sustained clips per second with acks --------------------------------------------

async function throughput(url) {
  const senders = await connectMany(url, 2 * config.throughputInFlight, 'burst-');
  const deadline = performance.now() + config.throughputSeconds * 1000;
  let acked = 0;
  let refused = 0;
  let next = 0;
  const bytes = { gif: 0, video: 0 };
  const pool = [...senders];
  async function lane() {
    while (performance.now() < deadline) {
      let socket = pool.shift();
      if (!socket) { await sleep(5); continue; }
      if (socket.sent === CLIPS_PER_SENDER) {
        socket.close();
        socket = await connect(url, `burst-${next += 1}`);
      }
      socket.sent = (socket.sent ?? 0) + 1;
      const reply = await socket.timeout(10_000).emitWithAck('message', clip('throughput'));
      if (reply.ok) {
        acked += 1;
        bytes.gif += reply.message.bytes;
        bytes.video += reply.message.video_bytes;
      } else {
        refused += 1;
      }
      pool.push(socket);
    }
  }
  const encodedBefore = await encodeSeconds(url);
  const started = performance.now();
  await Promise.all(Array.from({ length: config.throughputInFlight }, lane));
  const seconds = (performance.now() - started) / 1000;
  const encodedAfter = await encodeSeconds(url);
  closeAll(pool);
  const encodeMs = (1000 * (encodedAfter.sum - encodedBefore.sum)) / (encodedAfter.count - encodedBefore.count);
  return {
    'c. sustained clips/s (acked)': acked / seconds,
    'c. refused (busy etc.)': refused,
    'c. baseline: mean encode ms under this load': encodeMs,
    'c. baseline: encoder ceiling clips/s (cores / encode)': (1000 * availableParallelism()) / encodeMs,
    // Each clip is made as a GIF, an MP4 and a poster in one encoder job (SPEC §12).
    'c. mean KB per clip: GIF': bytes.gif / acked / 1000,
    // A build from before SPEC §12 makes no video.
    'c. mean KB per clip: MP4': Number.isNaN(bytes.video) ? 'none' : bytes.video / acked / 1000,
  };
}

// ---- d.: live room ----------------------------------------------------------------------

/**
 * A viewer spoken by hand over a raw WebSocket (Engine.IO v4), in the live room, whose TCP
 * socket stops being read: a browser tab that froze. `close()` ends it.
 */
async function stalledViewer(url) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
  const joined = new Promise((resolve, reject) => {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString('utf8');
      if (text === '2') ws.send('3'); // ping → pong, while it still reads
      else if (text.startsWith('0{')) ws.send('40{"name":"stalled"}');
      else if (text.startsWith('42["messages"')) ws.send('420["live:join"]');
      else if (text.startsWith('430[')) resolve();
    });
    ws.once('error', reject);
  });
  await joined;
  ws._socket.pause();
  return { close: () => ws.terminate() };
}

/**
 * The live room's raw figures on `url`: `config.streamers` streamers, `config.viewers`
 * viewers, and with `stalled`, one more viewer that stops reading once it joined (not
 * counted in the delivery, which is the others').
 */
async function measureLive(url, { stalled = false } = {}) {
  const viewers = await connectMany(url, config.viewers, 'viewer-');
  const streamers = await connectMany(url, config.streamers, 'streamer-');
  for (const socket of [...viewers, ...streamers]) await socket.timeout(5000).emitWithAck('live:join');
  const frozen = stalled ? await stalledViewer([url].flat()[0]) : null;
  const sentAt = new Map(); // `${from}/${seq}` -> send time; seq is the server's count
  let delivered = 0;
  const relayMs = [];
  for (const viewer of viewers) {
    viewer.on('live:frame', (meta) => {
      delivered += 1;
      const sent = sentAt.get(`${meta.from}/${meta.seq}`);
      if (sent !== undefined) relayMs.push(performance.now() - sent);
    });
  }
  for (const streamer of streamers) streamer.seq = 0;
  // Cameras are not in step: each streamer sends once a second at its own offset, as the
  // live page does from the moment it went live.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const started = performance.now();
  await Promise.all(streamers.map(async (streamer, index) => {
    await sleep((1000 * index) / streamers.length);
    for (let second = 0; second < config.liveSeconds; second += 1) {
      const tick = performance.now();
      streamer.seq += 1;
      sentAt.set(`${streamer.id}/${streamer.seq}`, performance.now());
      streamer.emit('live:frame', LIVE_FRAME);
      await sleep(Math.max(0, 1000 - (performance.now() - tick)));
    }
  }));
  await sleep(500);
  loopDelay.disable();
  const seconds = (performance.now() - started) / 1000;
  const expected = config.streamers * config.liveSeconds * config.viewers;
  closeAll([...viewers, ...streamers]);
  frozen?.close();
  return {
    perSecond: delivered / seconds,
    deliveredPercent: (100 * delivered) / expected,
    relayMs,
    loopDelayP99: loopDelay.percentile(99) / 1e6,
  };
}

/**
 * One streamer sending five frames a second for liveSeconds (at least 3), one viewer: how
 * many the server relays (SPEC §3: one per 900 ms at most) and the gaps between them.
 */
async function fastStreamer(url) {
  const [streamer, viewer] = await connectMany(url, 2, 'fast-');
  for (const socket of [streamer, viewer]) await socket.timeout(5000).emitWithAck('live:join');
  const arrivals = [];
  viewer.on('live:frame', () => arrivals.push(performance.now()));
  let told = 0;
  streamer.on('live:error', () => { told += 1; });
  const seconds = Math.max(3, config.liveSeconds);
  const started = performance.now();
  for (let i = 0; i < 5 * seconds; i += 1) {
    streamer.emit('live:frame', LIVE_FRAME);
    await sleep(Math.max(0, started + 200 * (i + 1) - performance.now()));
  }
  // The last relayed frame is on its way: a round trip on the viewer's connection after
  // it was sent brings everything the server had sent the viewer before.
  await viewer.timeout(5000).emitWithAck('live:join');
  const gaps = arrivals.slice(1).map((at, i) => at - arrivals[i]);
  closeAll([streamer, viewer]);
  return {
    'd. a 5 fps streamer: frames relayed per second (SPEC: one per 900 ms at most)': arrivals.length / seconds,
    'd. a 5 fps streamer: shortest gap between relayed frames at the viewer ms': gaps.length ? Math.min(...gaps) : NaN,
    'd. a 5 fps streamer: live:error events it was sent (SPEC: one per kind)': told,
  };
}

async function liveRoom(url) {
  const live = await measureLive(url);
  const withStall = await measureLive(url, { stalled: true });
  return {
    'd. live frames relayed to viewers/s': live.perSecond,
    'd. live delivered %': live.deliveredPercent,
    'd. live relay latency p50 ms': percentile(live.relayMs, 50),
    'd. live relay latency p99 ms': percentile(live.relayMs, 99),
    'd. with one viewer that stopped reading: the others\' delivered %': withStall.deliveredPercent,
    'd. with one viewer that stopped reading: the others\' relay latency p99 ms': percentile(withStall.relayMs, 99),
    ...await fastStreamer(url),
    'd. baseline: generator event-loop delay p99 ms': live.loopDelayP99,
  };
}

// ---- e.: memory per idle connection ------------------------------------------------------

async function idleMemory(url, pid) {
  await sleep(500);
  const before = rssKiB(pid);
  // Presence is coalesced to one event a second (SPEC §2): a watcher counts what it gets
  // while everyone connects.
  const watcher = await connect(url, 'presence-watcher');
  let presence = 0;
  let online = 0;
  watcher.on('presence', (event) => { presence += 1; online = event.online; });
  const connecting = performance.now();
  const sockets = await connectMany(url, config.idleConnections, 'idle-');
  // Until the watcher is told of them all (the last event may come up to a second later).
  const deadline = performance.now() + 10_000;
  while (online !== config.idleConnections + 1 && performance.now() < deadline) await sleep(10);
  const connectSeconds = (performance.now() - connecting) / 1000;
  const presenceDuringConnects = presence;
  await sleep(1000);
  const after = rssKiB(pid);
  closeAll([...sockets, watcher]);
  return {
    'e. server RSS before KiB': before,
    'e. server RSS with idle connections KiB': after,
    'e. server RSS per idle connection KiB': (after - before) / config.idleConnections,
    // Coalesced to one a second: at most ⌊seconds⌋ + 1 (one for each connection otherwise).
    'e. presence events at one watcher, first connect → told of all': `${presenceDuringConnects} in ${connectSeconds.toFixed(1)} s`,
  };
}

// ---- f.: a slow disk (every fsync delayed), against the same load on an ordinary disk -----

/**
 * Runs slowDiskSockets sockets at the rate limit (one clip every 4 s each, at staggered
 * phases, as people typing would) for slowDiskSeconds, on a server of its own, while
 * /healthz is asked every 100 ms. Counts the clips acked within ACK_DEADLINE_MS.
 */
async function sustainedClips(server) {
  const sockets = await connectMany(server.url, config.slowDiskSockets, 'steady-');
  const ackMs = [];
  let refused = 0;
  let sent = 0;
  const healthMs = [];
  let sending = true;
  const health = (async () => {
    while (sending) {
      const asked = performance.now();
      const response = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(30_000) });
      await response.arrayBuffer();
      healthMs.push(response.ok ? performance.now() - asked : Infinity);
      await sleep(100);
    }
  })();
  await Promise.all(sockets.map(async (socket, index) => {
    await sleep((RATE_LIMIT_MS * index) / sockets.length);
    const pending = [];
    const stopAt = performance.now() + config.slowDiskSeconds * 1000 - (RATE_LIMIT_MS * index) / sockets.length;
    while (performance.now() < stopAt) {
      const tick = performance.now();
      sent += 1;
      pending.push(socket.timeout(60_000).emitWithAck('message', clip('steady')).then(
        (reply) => (reply.ok ? ackMs.push(performance.now() - tick) : (refused += 1)),
        () => { refused += 1; },
      ));
      await sleep(Math.max(0, RATE_LIMIT_MS - (performance.now() - tick)));
    }
    await Promise.all(pending);
  }));
  sending = false;
  await health;
  const batch = await histogramMedian(server.url, 'loopchat_store_batch_clips');
  const commit = await histogramMedian(server.url, 'loopchat_store_commit_seconds');
  closeAll(sockets);
  const stopSeconds = await server.stop();
  return {
    sent,
    withinDeadline: (100 * ackMs.filter((ms) => ms <= ACK_DEADLINE_MS).length) / sent,
    ackP50: percentile(ackMs, 50),
    ackP99: percentile(ackMs, 99),
    refused,
    healthWorst: Math.max(...healthMs),
    batch,
    commitMs: 1000 * commit.mean,
    stopSeconds,
  };
}

async function slowDisk() {
  const ordinary = await sustainedClips(await startServer());
  const slow = await sustainedClips(await startServer({ env: slowDiskEnv(config.slowDiskFsyncMs) }));
  return {
    'f. slow disk: clips sent': slow.sent,
    'f. slow disk: acked within 8 s %': slow.withinDeadline,
    'f. slow disk: ack latency p50 ms': slow.ackP50,
    'f. slow disk: ack latency p99 ms': slow.ackP99,
    'f. slow disk: refused or unanswered': slow.refused,
    'f. slow disk: /healthz worst ms': slow.healthWorst,
    'f. slow disk: clips per batch, median (bucket bound)': slow.batch.median,
    'f. slow disk: clips per batch, mean': slow.batch.mean,
    'f. slow disk: ms per batch commit, mean': slow.commitMs,
    'f. slow disk: stop s': slow.stopSeconds,
    'f. baseline: ordinary disk, acked within 8 s %': ordinary.withinDeadline,
    'f. baseline: ordinary disk, ack latency p99 ms': ordinary.ackP99,
    'f. baseline: ordinary disk, /healthz worst ms': ordinary.healthWorst,
    'f. baseline: ordinary disk, clips per batch, mean': ordinary.batch.mean,
  };
}

// ---- g.: the store's disk use over a long run (SPEC §6) -----------------------------------

const MiB = 1024 * 1024;

/**
 * soakSockets sockets at the rate limit for soakSeconds with --clip-ttl `ttl`, the data
 * dir's size sampled every second beside the bytes of the clips acked and not yet expired.
 */
async function soakAt(ttl) {
  const server = await startServer({ args: ['--clip-ttl', ttl] });
  const sockets = await connectMany(server.url, config.soakSockets, 'soak-');
  const live = []; // { expires_at, bytes } of every acked clip
  let acked = 0;
  let refused = 0;
  let worst = { ratio: 0, disk: 0, unexpired: 0 };
  let maxDisk = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const now = Date.now();
      const unexpired = live.reduce((sum, clip) => sum + (clip.expires_at > now ? clip.bytes : 0), 0);
      const disk = diskBytes(server.dataDir);
      const ratio = disk / (3 * unexpired + 64 * MiB);
      maxDisk = Math.max(maxDisk, disk);
      if (ratio > worst.ratio) worst = { ratio, disk, unexpired };
      await sleep(1000);
    }
  })();
  await Promise.all(sockets.map(async (socket, index) => {
    await sleep((RATE_LIMIT_MS * index) / sockets.length);
    const stopAt = performance.now() + config.soakSeconds * 1000 - (RATE_LIMIT_MS * index) / sockets.length;
    while (performance.now() < stopAt) {
      const tick = performance.now();
      const reply = await socket.timeout(60_000).emitWithAck('message', clip('soak')).catch(() => ({ ok: false }));
      if (reply.ok) {
        acked += 1;
        live.push({ expires_at: reply.message.expires_at, bytes: reply.message.bytes });
        const now = Date.now();
        while (live.length && live[0].expires_at <= now) live.shift();
      } else {
        refused += 1;
      }
      await sleep(Math.max(0, RATE_LIMIT_MS - (performance.now() - tick)));
    }
  }));
  sampling = false;
  await sampler;
  closeAll(sockets);
  await server.stop();
  return {
    [`g. soak ${ttl}: clips acked (refused)`]: `${acked} (${refused})`,
    [`g. soak ${ttl}: disk, max MiB`]: maxDisk / MiB,
    [`g. soak ${ttl}: worst disk ÷ (3 × unexpired + 64 MiB)`]: worst.ratio,
    [`g. soak ${ttl}: at the worst, disk / unexpired MiB`]: `${(worst.disk / MiB).toFixed(1)} / ${(worst.unexpired / MiB).toFixed(1)}`,
  };
}

async function soak() {
  const results = {};
  for (const ttl of config.soakTtls) Object.assign(results, await soakAt(ttl));
  return results;
}

// ---- h.: call signalling (SPEC §9) --------------------------------------------------------

// h.: people in each call, a full mesh: every pair negotiates.
const CALL_SIZE = 4;
// h.: ICE candidates each side of a pair sends per negotiation.
const CANDIDATES = 4;
// An SDP description of about 4 KB and an ICE candidate of about 300 B, as browsers make them.
const SDP = Array.from({ length: 70 }, (_, i) => `a=rtpmap:${96 + i} VP8/90000;fmtp:${96 + i} x-google-start-bitrate=800\r\n`).join('').slice(0, 4000);
const CANDIDATE = 'candidate:842163049 1 udp 1677729535 203.0.113.7 61764 typ srflx raddr 10.0.0.5 rport 61764 generation 0 ufrag Xy9z network-id 1 network-cost 10'.padEnd(280, ' ');

/**
 * callRooms calls of CALL_SIZE sockets each. Once a second, at each call's own offset, every
 * pair negotiates as the pages do: the later joiner sends an offer and candidates, the other
 * answers with an answer and candidates. Each signal carries its send time; the receiver
 * measures the relay.
 */
async function callSignalling(url, pid) {
  const sockets = await connectMany(url, config.callRooms * CALL_SIZE, 'caller-');
  const floorMs = [];
  for (let i = 0; i < 200; i += 1) {
    const sent = performance.now();
    await sockets[i % sockets.length].timeout(10_000).emitWithAck('call:leave');
    floorMs.push(performance.now() - sent);
  }
  const calls = [];
  for (let room = 0; room < config.callRooms; room += 1) calls.push(sockets.slice(room * CALL_SIZE, (room + 1) * CALL_SIZE));
  // In order within a call, so that each one's peers are those before it; calls in parallel.
  await Promise.all(calls.map(async (members, room) => {
    for (const socket of members) {
      const reply = await socket.timeout(10_000).emitWithAck('call:join', { room: `load-${room}` });
      if (!reply.ok) throw new Error(`call:join refused: ${reply.error.code}`);
    }
  }));

  let sent = 0;
  let received = 0;
  let refused = 0;
  const relayMs = [];
  const send = (from, to, data) => {
    sent += 1;
    from.emit('call:signal', { to, data: { ...data, t: performance.now() } });
  };
  for (const socket of sockets) {
    socket.on('call:error', () => { refused += 1; });
    socket.on('call:signal', ({ from, data }) => {
      received += 1;
      relayMs.push(performance.now() - data.t);
      if (data.type === 'offer') {
        send(socket, from, { type: 'answer', sdp: SDP });
        for (let c = 0; c < CANDIDATES; c += 1) send(socket, from, { candidate: CANDIDATE, sdpMid: '0', sdpMLineIndex: 0 });
      }
    });
  }
  const negotiate = (members) => {
    for (let later = 1; later < members.length; later += 1) {
      for (let earlier = 0; earlier < later; earlier += 1) {
        send(members[later], members[earlier].id, { type: 'offer', sdp: SDP });
        for (let c = 0; c < CANDIDATES; c += 1) send(members[later], members[earlier].id, { candidate: CANDIDATE, sdpMid: '0', sdpMLineIndex: 0 });
      }
    }
  };

  const burst = await signalBurst(url);

  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpuBefore = cpuSeconds(pid);
  const started = performance.now();
  await Promise.all(calls.map(async (members, index) => {
    await sleep((1000 * index) / calls.length);
    for (let second = 0; second < config.callSeconds; second += 1) {
      const tick = performance.now();
      negotiate(members);
      await sleep(Math.max(0, 1000 - (performance.now() - tick)));
    }
  }));
  const deadline = performance.now() + 10_000;
  while (received + refused < sent && performance.now() < deadline) await sleep(10);
  const seconds = (performance.now() - started) / 1000;
  const serverCpu = (100 * (cpuSeconds(pid) - cpuBefore)) / seconds;
  loopDelay.disable();
  closeAll(sockets);
  return {
    'h. call signals relayed/s': received / seconds,
    'h. call signals delivered %': (100 * received) / sent,
    'h. call signals refused': refused,
    'h. call relay latency p50 ms': percentile(relayMs, 50),
    'h. call relay latency p99 ms': percentile(relayMs, 99),
    'h. server CPU % of one core during the signalling': serverCpu,
    'h. baseline: transport round trip (call:leave) p50 ms': percentile(floorMs, 50),
    'h. baseline: transport round trip (call:leave) p99 ms': percentile(floorMs, 99),
    'h. baseline: generator event-loop delay p99 ms': loopDelay.percentile(99) / 1e6,
    ...burst,
  };
}

/** Reads the call signal counters of /metrics. */
async function signalCounters(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return {
    relayed: Number(text.match(/^loopchat_call_signals_relayed_total (\S+)$/m)?.[1] ?? NaN),
    // Accepted but not delivered: the target's queue of outgoing packets was full.
    undelivered: Number(text.match(/^loopchat_call_signals_undelivered_total (\S+)$/m)?.[1] ?? 0),
    limited: Number(text.match(/^loopchat_call_signals_refused_total\{code="rate_limited"\} (\S+)$/m)?.[1] ?? 0),
  };
}

/**
 * SIGNAL_BURST signals from one socket to another at once: the token bucket (SPEC §9: 300,
 * one more every 10 ms) lets 300 through and a token for each 10 ms the burst took.
 */
const SIGNAL_BURST = 400;
async function signalBurst(url) {
  const [from, to] = await connectMany(url, 2, 'burst-caller-');
  for (const socket of [from, to]) await socket.timeout(10_000).emitWithAck('call:join', { room: 'load-burst' });
  const before = await signalCounters(url);
  const started = performance.now();
  for (let i = 0; i < SIGNAL_BURST; i += 1) from.emit('call:signal', { to: to.id, data: { candidate: `candidate ${i}` } });
  let after = before;
  const deadline = performance.now() + 30_000;
  const counted = (counters) => counters.relayed + counters.undelivered + counters.limited;
  while (counted(after) - counted(before) < SIGNAL_BURST && performance.now() < deadline) {
    await sleep(5);
    after = await signalCounters(url);
  }
  const ms = performance.now() - started;
  closeAll([from, to]);
  return {
    [`h. a burst of ${SIGNAL_BURST} signals: relayed (bucket: 300 + 1 per 10 ms)`]: after.relayed - before.relayed,
    [`h. a burst of ${SIGNAL_BURST} signals: accepted, not delivered (target's queue full)`]: after.undelivered - before.undelivered,
    [`h. a burst of ${SIGNAL_BURST} signals: refused rate_limited`]: after.limited - before.limited,
    [`h. a burst of ${SIGNAL_BURST} signals: sent → all counted ms`]: ms,
  };
}

// ---- i./j.: two nodes on Redis behind nginx ----------------------------------------------

/**
 * Runs `work` and returns `[its result, the CPU % of one core that each group of `groups`
 * (lists of PIDs) used meanwhile, as "a / b / …"]`.
 */
async function cpuDuring(groups, work) {
  const total = (pids) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const before = groups.map(total);
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  return [result, groups.map((pids, i) => ((100 * (total(pids) - before[i])) / seconds).toFixed(1)).join(' / ')];
}

async function connectionsOf(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(text.match(/^loopchat_connections (\S+)$/m)?.[1] ?? NaN);
}

/**
 * A Redis as cluster mode wants it (appendonly, appendfsync always), two nodes on it and
 * nginx with deploy/nginx/loopchat.conf in front; the same fan-out, ack latency and live room
 * as a., b. and d. through nginx, each right after the same measurement on the single node
 * `url`, so that both come from one machine in one state.
 */
async function cluster(url) {
  const redis = await startRedis();
  const nodes = [];
  let nginx;
  try {
    for (let i = 0; i < 2; i += 1) nodes.push(await startServer({ args: ['--redis-url', redis.url] }));
    // As many nginx workers as cores, as an operator would run it.
    nginx = await startNginx({ nodes: nodes.map((node) => node.url), workers: 'auto' });
    const services = () => [[nodes[0].pid], [nodes[1].pid], [redis.pid()], nginx.pids()];
    const single = await measureLatency(url);
    const [pair, pairCpu] = await cpuDuring(services(), () => measureLatency(nginx.url, () => Promise.all(nodes.map((node) => connectionsOf(node.url)))));
    const singleLive = await measureLive(url);
    const [pairLive, pairLiveCpu] = await cpuDuring(services(), () => measureLive(nginx.url));
    // The same, every socket straight to a node, half on each: nginx's share of the above.
    const directLive = await measureLive(nodes.map((node) => node.url));
    return {
      'i. 2 nodes: CPU % of one core, node A / B / Redis / nginx': pairCpu,
      'i. 2 nodes: receivers on each node': pair.connected.join(' / '),
      'i. 2 nodes: transport round trip via nginx p50 ms': percentile(pair.floorMs, 50),
      'i. 2 nodes: ack latency p50 ms': percentile(pair.ackMs, 50),
      'i. 2 nodes: ack latency p99 ms': percentile(pair.ackMs, 99),
      'i. 2 nodes: fan-out to all receivers p50 ms': percentile(pair.fanOutMs, 50),
      'i. 2 nodes: fan-out to all receivers p99 ms': percentile(pair.fanOutMs, 99),
      'i. 2 nodes: clips fully delivered': `${pair.fanOutMs.length}/${config.latencyClips}`,
      'i. baseline: 1 node, transport round trip p50 ms': percentile(single.floorMs, 50),
      'i. baseline: 1 node, ack latency p50 ms': percentile(single.ackMs, 50),
      'i. baseline: 1 node, fan-out p50 ms': percentile(single.fanOutMs, 50),
      'j. 2 nodes: CPU % of one core, node A / B / Redis / nginx': pairLiveCpu,
      'j. 2 nodes: live delivered %': pairLive.deliveredPercent,
      'j. 2 nodes: live relay latency p50 ms': percentile(pairLive.relayMs, 50),
      'j. 2 nodes: live relay latency p99 ms': percentile(pairLive.relayMs, 99),
      'j. baseline: 2 nodes without nginx, live delivered %': directLive.deliveredPercent,
      'j. baseline: 2 nodes without nginx, live relay latency p99 ms': percentile(directLive.relayMs, 99),
      'j. baseline: 1 node, live delivered %': singleLive.deliveredPercent,
      'j. baseline: 1 node, live relay latency p50 ms': percentile(singleLive.relayMs, 50),
      'j. baseline: 1 node, live relay latency p99 ms': percentile(singleLive.relayMs, 99),
      'j. baseline: generator event-loop delay p99 ms (2 nodes)': pairLive.loopDelayP99,
    };
  } finally {
    await nginx?.cleanup();
    for (const node of nodes) await node.stop();
    await redis.cleanup();
  }
}

// ---- k.: the SPEC's deadlines in cluster mode (§8) ----------------------------------------

// k.: every wait is cut off here; a figure that hits it is reported as "> 60000".
const OUTAGE_WAIT_MS = 60_000;
// k.: the TTL of the expiry measurement, and how many clips it times.
const EXPIRY_TTL = '2s';
const EXPIRY_CLIPS = 5;

/** Polls `check` every 10 ms until it holds; resolves with the ms it took, or Infinity. */
async function timeUntil(check, from = performance.now()) {
  for (;;) {
    try {
      if (await check()) return performance.now() - from;
    } catch {
      // not yet (a refused connection, an aborted request)
    }
    if (performance.now() - from > OUTAGE_WAIT_MS) return Infinity;
    await sleep(10);
  }
}

const healthStatus = async (url) => (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(OUTAGE_WAIT_MS) })).status;
const shownMs = (ms) => (Number.isFinite(ms) ? ms : `> ${OUTAGE_WAIT_MS}`);
const worst = (values) => shownMs(Math.max(...values));

/** Sends a clip from a fresh socket on `from` until one is acked; resolves with the ms until `watcher` got it. */
async function deliveredAcross(from, watcher, started) {
  const got = new Set();
  watcher.on('message', (message) => got.add(message.key));
  for (;;) {
    if (performance.now() - started > OUTAGE_WAIT_MS) return Infinity;
    const sender = await connect(from, `recovery-${Math.random().toString(36).slice(2, 8)}`).catch(() => null);
    if (!sender) { await sleep(10); continue; }
    const reply = await sender.timeout(OUTAGE_WAIT_MS).emitWithAck('message', clip('recovered?')).catch(() => ({ ok: false }));
    sender.close();
    if (reply.ok) return timeUntil(() => got.has(reply.message.key), started);
    await sleep(10);
  }
}

/**
 * Two nodes on one Redis (no nginx: the deadlines are the nodes'). Each round stops Redis
 * (SIGTERM), times the nodes' /healthz turning 503 and clips being answered `unavailable`,
 * starts it again and times each node's /healthz, a clip from each node reaching the other,
 * and presence counting both nodes; then kills Redis (SIGKILL) with a burst of clips in
 * flight and times their last answer. First, how late after its `expires_at` a clip is gone
 * from both nodes (Redis's own expiry; --clip-ttl 2s).
 */
async function outage() {
  const redis = await startRedis();
  const nodes = [];
  const sockets = [];
  try {
    for (let i = 0; i < 2; i += 1) nodes.push(await startServer({ args: ['--redis-url', redis.url, '--clip-ttl', EXPIRY_TTL] }));
    const [a, b] = nodes;

    // Expiry: EXPIRY_CLIPS clips at once, each polled on both nodes from its expires_at on.
    const sender = await connect(a.url, 'expiry');
    sockets.push(sender);
    const expiring = await Promise.all(Array.from({ length: EXPIRY_CLIPS }, (_, i) => sender.timeout(10_000).emitWithAck('message', clip(`expiry ${i}`))));
    const lateMs = await Promise.all(expiring.filter((reply) => reply.ok).map(async ({ message }) => {
      await sleep(Math.max(0, message.expires_at - Date.now()));
      // On the wall clock, as expires_at is: from it to the 404 on the later node.
      const goneAt = await Promise.all(nodes.map(async (node) => {
        const ms = await timeUntil(async () => (await fetch(`${node.url}${message.clip}`)).status === 404);
        return Number.isFinite(ms) ? Date.now() : Infinity;
      }));
      return Math.max(...goneAt) - message.expires_at;
    }));

    const watchers = [await connect(a.url, 'watcher-a'), await connect(b.url, 'watcher-b')];
    sockets.push(...watchers);
    const presenceOf = [];
    watchers[1].on('presence', (presence) => presenceOf.push(presence));
    const figures = { healthDown: [], unavailable: [], healthUp: [], aToB: [], bToA: [], presence: [], killAnswers: [], killAcked: 0, killRefused: 0 };
    for (let round = 0; round < config.outageRounds; round += 1) {
      await redis.stop();
      const stopped = performance.now();
      figures.healthDown.push(...await Promise.all(nodes.map((node) => timeUntil(async () => (await healthStatus(node.url)) === 503, stopped))));
      // Five clips per node (the burst a socket may send), each timed send → answer.
      await Promise.all(nodes.map(async (node) => {
        const during = await connect(node.url, `during-${round}`);
        await Promise.all(Array.from({ length: CLIPS_PER_SENDER }, async () => {
          const sent = performance.now();
          const reply = await during.timeout(OUTAGE_WAIT_MS).emitWithAck('message', clip('during the outage')).catch(() => null);
          figures.unavailable.push(reply?.error?.code === 'unavailable' ? performance.now() - sent : Infinity);
        }));
        during.close();
      }));

      await redis.start();
      const started = performance.now();
      figures.healthUp.push(...await Promise.all(nodes.map((node) => timeUntil(async () => (await healthStatus(node.url)) === 200, started))));
      figures.aToB.push(await deliveredAcross(a.url, watchers[1], started));
      figures.bToA.push(await deliveredAcross(b.url, watchers[0], started));
      figures.presence.push(await timeUntil(async () => {
        const connections = (await connectionsOf(a.url)) + (await connectionsOf(b.url));
        return presenceOf.at(-1)?.online === connections;
      }, started));

      // A burst on both nodes; Redis is killed as soon as the first of it is acked.
      const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => connect(nodes[i % 2].url, `burst-${round}-${i}`)));
      const answers = burst.map((socket) => socket.timeout(OUTAGE_WAIT_MS).emitWithAck('message', clip('burst')).catch(() => null));
      await Promise.any(answers.map((answer) => answer.then((reply) => (reply?.ok ? reply : Promise.reject(new Error('refused'))))));
      const killed = performance.now();
      const dead = redis.kill9();
      const replies = await Promise.all(answers);
      figures.killAnswers.push(performance.now() - killed);
      figures.killAcked += replies.filter((reply) => reply?.ok).length;
      figures.killRefused += replies.filter((reply) => reply?.error?.code === 'unavailable').length;
      await dead;
      closeAll(burst);
      await redis.start();
      await Promise.all(nodes.map((node) => timeUntil(async () => (await healthStatus(node.url)) === 200)));
    }
    return {
      [`k. expiry (--clip-ttl ${EXPIRY_TTL}): expires_at → GIF 404 on both nodes, worst ms (${lateMs.length} clips)`]: worst(lateMs),
      [`k. Redis stopped: → /healthz 503, worst of ${figures.healthDown.length} ms`]: worst(figures.healthDown),
      'k. Redis stopped: clip → unavailable, p50 ms (SPEC: within 5 s)': percentile(figures.unavailable, 50),
      [`k. Redis stopped: clip → unavailable, worst of ${figures.unavailable.length} ms (SPEC: within 5 s)`]: worst(figures.unavailable),
      'k. Redis back: → /healthz 200 on both nodes, worst ms (SPEC: within 10 s)': worst(figures.healthUp),
      'k. Redis back: → a clip from A reaches B, worst ms (SPEC: within 10 s)': worst(figures.aToB),
      'k. Redis back: → a clip from B reaches A, worst ms (SPEC: within 10 s)': worst(figures.bToA),
      'k. Redis back: → presence counts both nodes, worst ms (SPEC: within 10 s)': worst(figures.presence),
      'k. Redis killed with a burst in flight: → every clip answered, worst ms (SPEC: within 5 s)': worst(figures.killAnswers),
      'k. Redis killed with a burst in flight: acked / refused unavailable': `${figures.killAcked} / ${figures.killRefused}`,
      'k. rounds': String(config.outageRounds),
    };
  } finally {
    closeAll(sockets);
    for (const node of nodes) await node.stop();
    await redis.cleanup();
  }
}

// ---- l.: one address floods the feed (SPEC §13) -------------------------------------------

/** A new browser's identity: a random token in base64url (SPEC §10: 22–64 characters). */
const freshToken = () => randomBytes(24).toString('base64url');

/** /metrics `loopchat_address_refusals_total` as `kind/code` → count; {} for a build without it. */
async function addressRefusals(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts = {};
  for (const [, labels, value] of text.matchAll(/^loopchat_address_refusals_total\{([^}]*)\} (\S+)$/gm)) {
    const label = (name) => labels.match(new RegExp(`${name}="([^"]*)"`))?.[1];
    counts[`${label('kind')}/${label('code')}`] = Number(value);
  }
  return counts;
}

/** `{ ok: 3, rate_limited: 7 }` as "ok 3, rate_limited 7". */
const tally = (counts) => Object.entries(counts).map(([code, count]) => `${code} ${count}`).join(', ');

/**
 * A server of its own with the defaults; one observer on another address (127.0.0.2); then
 * floodSockets sockets from 127.0.0.1, each a fresh identity, each sending the burst one
 * socket may (5 clips) at once, then one clip every 4 s (one socket's rate) until
 * floodSeconds are over. How many clips the observer saw, against the address bucket's
 * bound: M/2 at once, then M a minute (M = 40).
 */
async function flood() {
  const server = await startServer({ limits: true });
  const sockets = [];
  try {
    const observer = await connect(server.url, 'flood-observer', { localAddress: '127.0.0.2' });
    sockets.push(observer);
    const seen = []; // arrival times of the clips at the observer
    observer.on('message', () => seen.push(performance.now()));
    const refusedConnections = { too_many_connections: 0 };
    const flooders = [];
    await Promise.all(Array.from({ length: config.floodSockets }, (_, i) => connect(server.url, `flood-${i}`, { localAddress: '127.0.0.1', token: freshToken() }).then(
      (socket) => flooders.push(socket),
      (error) => { refusedConnections[error.message] = (refusedConnections[error.message] ?? 0) + 1; },
    )));
    sockets.push(...flooders);
    const acks = { ok: 0, rate_limited: 0, busy: 0 };
    const pending = [];
    const send = (socket) => pending.push(socket.timeout(30_000).emitWithAck('message', clip('flood')).then(
      (reply) => (reply.ok ? 'ok' : reply.error?.code ?? 'unknown'),
      () => 'no answer',
    ).then((code) => { acks[code] = (acks[code] ?? 0) + 1; }));
    const started = performance.now();
    for (const socket of flooders) for (let i = 0; i < CLIPS_PER_SENDER; i += 1) send(socket);
    // A little after each refill of one socket's bucket, so that what refuses is the address's.
    for (let at = RATE_LIMIT_MS + 250; at < config.floodSeconds * 1000; at += RATE_LIMIT_MS) {
      await sleep(Math.max(0, started + at - performance.now()));
      for (const socket of flooders) send(socket);
    }
    await sleep(Math.max(0, started + config.floodSeconds * 1000 - performance.now()));
    await Promise.all(pending);
    // Every acked clip is on its way to the observer.
    const deadline = performance.now() + 5000;
    while (seen.length < acks.ok && performance.now() < deadline) await sleep(10);
    const refusals = await addressRefusals(server.url);
    const burstBound = Math.ceil(CLIPS_PER_ADDRESS_PER_MINUTE / 2);
    const bound = burstBound + Math.floor((CLIPS_PER_ADDRESS_PER_MINUTE * config.floodSeconds) / 60);
    const otherRefusals = Object.entries(refusedConnections).filter(([code]) => code !== 'too_many_connections');
    return {
      [`l. flood (${config.floodSockets} sockets, 1 address): clips at an observer elsewhere in the first 2 s (target ≤ ${burstBound})`]: String(seen.filter((at) => at - started <= 2000).length),
      [`l. flood: clips at the observer in the whole ${config.floodSeconds} s (target ≤ ${bound})`]: String(seen.length),
      [`l. flood: sockets refused too_many_connections (target 0: ${config.floodSockets} < ${CONNECTIONS_PER_ADDRESS})`]: String(refusedConnections.too_many_connections),
      ...(otherRefusals.length ? { 'l. flood: sockets refused otherwise': tally(Object.fromEntries(otherRefusals)) } : {}),
      [`l. flood: acks of the ${pending.length} clips sent`]: tally(acks),
      'l. flood: of them refused by the address\'s bucket (/metrics)': String(refusals['message/rate_limited'] ?? 'none'),
    };
  } finally {
    closeAll(sockets);
    await server.stop();
  }
}

// ---- m.: what the per-address limits cost (SPEC §13) ---------------------------------------

let addressesTaken = 0;
/**
 * A loopback address no other socket of this run came from, 127.0.0.10 on (then 127.0.1.1,
 * …): a client machine of its own, whose limits nothing else has used up.
 */
function freshAddress() {
  const n = 9 + addressesTaken;
  addressesTaken += 1;
  return `127.0.${Math.floor(n / 254)}.${(n % 254) + 1}`;
}

// m.: a clip refused at once after the limits' checks (SPEC §5: 0 frames), so that its answer
// is the checks and the round trip without the encoder and the store.
const EMPTY_CLIP = { message: 'no frames', frames: [] };
// m.: connections from one address in a round: half its cap (64), a quarter of its 2N a minute.
const CONNECTIONS_PER_COST_ADDRESS = 32;

/**
 * One sender on `url` from a fresh address sends CLIPS_PER_SENDER of `payload` one after
 * another; the ms of each answer `expected` go to `into.ms`, any other answer to
 * `into.unexpected`.
 */
async function timeSender(url, payload, expected, into) {
  const sender = await connect(url, `cost-${addressesTaken}`, { localAddress: freshAddress() });
  for (let i = 0; i < CLIPS_PER_SENDER; i += 1) {
    const sent = performance.now();
    const reply = await sender.timeout(10_000).emitWithAck('message', payload).catch(() => ({ error: { code: 'no answer' } }));
    const code = reply.ok ? 'ok' : reply.error?.code ?? 'unknown';
    if (code === expected) into.ms.push(performance.now() - sent);
    else into.unexpected[code] = (into.unexpected[code] ?? 0) + 1;
  }
  sender.close();
}

/**
 * costClips clips and as many refused ones (EMPTY_CLIP) on each of `on` and `off` (a URL, or
 * a list of nodes taken in turn), one sender at a time, the two targets alternating (and
 * which goes first), so both see the machine in the same state.
 */
async function interleavedClips(on, off) {
  const figures = () => ({ clip: { ms: [], unexpected: {} }, refused: { ms: [], unexpected: {} } });
  const results = { on: figures(), off: figures() };
  for (let round = 0; round < config.costClips / CLIPS_PER_SENDER; round += 1) {
    for (const which of round % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
      const urls = [{ on, off }[which]].flat();
      await timeSender(urls[round % urls.length], clip('cost'), 'ok', results[which].clip);
      await timeSender(urls[round % urls.length], EMPTY_CLIP, 'bad_frame_count', results[which].refused);
    }
  }
  return results;
}

/** costConnections sockets on `url`, CONNECTIONS_PER_COST_ADDRESS from each of fresh addresses; closed once timed. */
async function connectionSeconds(url) {
  const addresses = Array.from({ length: Math.ceil(config.costConnections / CONNECTIONS_PER_COST_ADDRESS) }, freshAddress);
  const started = performance.now();
  const sockets = await connectMany(url, config.costConnections, 'cost-connection-', (i) => ({ localAddress: addresses[i % addresses.length] }));
  const seconds = (performance.now() - started) / 1000;
  closeAll(sockets);
  // The next round starts once the server has seen them all go.
  await timeUntil(async () => (await connectionsOf(url)) === 0);
  return seconds;
}

const p50p99 = (values) => [50, 99].map((p) => percentile(values, p).toFixed(2)).join(' / ');
const shownRatio = (on, off) => [50, 99].map((p) => `${(percentile(on, p) / percentile(off, p)).toFixed(2)} ×`).join(' / ');

/**
 * The limits' defaults against both limits off (0), the same load on both, interleaved:
 * clip acks and refused clips' answers on one node each, then on two nodes each on a Redis of
 * their own (the sockets straight to the nodes, half on each: the limits' Redis round trips,
 * not nginx's); and connections accepted a second by one node, rounds alternating.
 */
async function limitsCost() {
  if (!ADDRESS_LIMITS) return { 'm. limits-cost': 'skipped: this build has no per-address limits (SPEC §13)' };
  const figures = {};
  const unexpected = { on: {}, off: {} };
  const count = (which, { clip: clips, refused }) => {
    for (const codes of [clips.unexpected, refused.unexpected]) {
      for (const [code, n] of Object.entries(codes)) unexpected[which][code] = (unexpected[which][code] ?? 0) + n;
    }
  };
  let refusedByLimits = 0;
  const refusalsOf = async (url) => Object.values(await addressRefusals(url)).reduce((sum, n) => sum + n, 0);

  const on = await startServer({ limits: true });
  const off = await startServer();
  try {
    const single = await interleavedClips(on.url, off.url);
    const seconds = { on: [], off: [] };
    for (let round = 0; round < config.costRounds; round += 1) {
      for (const which of round % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
        seconds[which].push(await connectionSeconds({ on, off }[which].url));
      }
    }
    const perSecond = (which) => (config.costRounds * config.costConnections) / seconds[which].reduce((sum, s) => sum + s, 0);
    // Each round's on against its off, right beside it: the median is the machine's drift left out.
    const connectionRatio = percentile(seconds.off.map((off, round) => off / seconds.on[round]), 50);
    for (const which of ['on', 'off']) count(which, single[which]);
    refusedByLimits += await refusalsOf(on.url);
    Object.assign(figures, {
      [`m. 1 node, limits on: clip ack p50 / p99 ms (${config.costClips} each way, interleaved)`]: p50p99(single.on.clip.ms),
      'm. 1 node, limits on ÷ off: clip ack p50 / p99': shownRatio(single.on.clip.ms, single.off.clip.ms),
      'm. 1 node, limits on: refused clip (0 frames) answer p50 / p99 ms': p50p99(single.on.refused.ms),
      'm. 1 node, limits on ÷ off: refused clip answer p50 / p99': shownRatio(single.on.refused.ms, single.off.refused.ms),
      [`m. 1 node, limits on: connections accepted/s (${config.costRounds} × ${config.costConnections}, ${CONNECTIONS_PER_COST_ADDRESS} an address)`]: perSecond('on'),
      [`m. 1 node, limits on ÷ off: connections accepted/s, median of ${config.costRounds} rounds`]: `${connectionRatio.toFixed(2)} ×`,
      'm. baseline: 1 node, limits off: clip ack p50 / p99 ms': p50p99(single.off.clip.ms),
      'm. baseline: 1 node, limits off: refused clip answer p50 / p99 ms': p50p99(single.off.refused.ms),
      'm. baseline: 1 node, limits off: connections accepted/s': perSecond('off'),
    });
  } finally {
    await on.stop();
    await off.stop();
  }

  // Each pair on a Redis of its own: one cluster with the limits, one without.
  const redis = {};
  const nodes = { on: [], off: [] };
  try {
    for (const which of ['on', 'off']) {
      redis[which] = await startRedis();
      for (let i = 0; i < 2; i += 1) nodes[which].push(await startServer({ args: ['--redis-url', redis[which].url], limits: which === 'on' }));
    }
    const pair = await interleavedClips(nodes.on.map((node) => node.url), nodes.off.map((node) => node.url));
    for (const which of ['on', 'off']) count(which, pair[which]);
    for (const node of nodes.on) refusedByLimits += await refusalsOf(node.url);
    Object.assign(figures, {
      'm. 2 nodes on Redis, limits on: clip ack p50 / p99 ms': p50p99(pair.on.clip.ms),
      'm. 2 nodes on Redis, limits on ÷ off: clip ack p50 / p99': shownRatio(pair.on.clip.ms, pair.off.clip.ms),
      'm. 2 nodes on Redis, limits on: refused clip answer p50 / p99 ms': p50p99(pair.on.refused.ms),
      'm. 2 nodes on Redis, limits on ÷ off: refused clip answer p50 / p99': shownRatio(pair.on.refused.ms, pair.off.refused.ms),
      'm. baseline: 2 nodes on Redis, limits off: clip ack p50 / p99 ms': p50p99(pair.off.clip.ms),
      'm. baseline: 2 nodes on Redis, limits off: refused clip answer p50 / p99 ms': p50p99(pair.off.refused.ms),
    });
  } finally {
    for (const node of [...nodes.on, ...nodes.off]) await node.stop();
    for (const instance of Object.values(redis)) await instance.cleanup();
  }
  figures['m. refused by a limit on the limits-on servers (/metrics; should be 0)'] = String(refusedByLimits);
  figures['m. other answers than expected, limits on / off (should be none)'] = `${tally(unexpected.on) || 'none'} / ${tally(unexpected.off) || 'none'}`;
  return figures;
}

// ---- main --------------------------------------------------------------------------------

// Phases that take (url, pid) share the one server started below; `slowdisk`, `soak`,
// `outage`, `flood` and `limits-cost` start their own, and so does `cluster` (beside the
// shared one, its baseline).
const phases = {
  latency: latencyAndFanOut,
  throughput,
  live: liveRoom,
  memory: idleMemory,
  slowdisk: slowDisk,
  soak,
  call: callSignalling,
  cluster,
  outage,
  flood,
  'limits-cost': limitsCost,
};
// The phases whose servers run with the per-address limits on; every other one's are off.
const LIMITED_PHASES = ['flood', 'limits-cost'];

const server = await startServer();
const results = {};
const generatorCpuStart = process.cpuUsage();
const wallStart = performance.now();
const serverCpuStart = cpuSeconds(server.pid);
try {
  for (const [name, phase] of Object.entries(phases)) {
    if (options.only && options.only !== name) continue;
    Object.assign(results, await withLimit(name, () => phase(server.url, server.pid)));
  }
} finally {
  const wall = (performance.now() - wallStart) / 1000;
  const cpu = process.cpuUsage(generatorCpuStart);
  results['load generator CPU % of one core'] = (100 * (cpu.user + cpu.system)) / 1e6 / wall;
  results['server CPU % of one core'] = (100 * (cpuSeconds(server.pid) - serverCpuStart)) / wall;
  await server.stop();
}

const width = Math.max(...Object.keys(results).map((k) => k.length));
console.log(`loopchat load (${options.smoke ? 'smoke' : 'full'} configuration: ${JSON.stringify(config)})`);
if (!ADDRESS_LIMITS) {
  console.log('this build has no per-address limits (SPEC §13): l. shows what one address gets through without them, m. is skipped');
} else if (Object.keys(phases).some((name) => !LIMITED_PHASES.includes(name) && (!options.only || options.only === name))) {
  console.log(`per-address limits (SPEC §13) off on every server of a.–k. (${LIMITS_OFF.join(' ')}): they open up to 5,000 sockets and send hundreds of clips a minute from 127.0.0.1 alone, which the defaults (${CONNECTIONS_PER_ADDRESS} connections, ${CLIPS_PER_ADDRESS_PER_MINUTE} clips a minute an address) would refuse; l. and m. run with the defaults`);
}
for (const [name, value] of Object.entries(results)) {
  const shown = typeof value === 'number' ? value.toFixed(value < 10 ? 2 : 1) : value;
  console.log(`${name.padEnd(width)}  ${shown}`);
}
process.exit(0);
