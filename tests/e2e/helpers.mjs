// Shared helpers for the end-to-end suites: start the real server binary, connect official
// socket.io-client sockets, wait for events, build frames, read /metrics and decode GIFs.
//
// Nothing here measures time: every wait has a timeout only so that a broken server fails
// a test instead of hanging it.
//
// tests/lib/cleanup.mjs, imported first, stops every process a test file started and
// removes its temporary folders however the file's process ends (Ctrl-C included).
import { ROOT, removeDir, tempDir } from '../lib/cleanup.mjs';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { io } from 'socket.io-client';
import omggif from 'omggif';

const { GifReader } = omggif;

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SERVER_BIN = resolve(REPO_ROOT, process.env.LOOPCHAT_BIN ?? 'target/release/loopchat');
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
/** Default timeout of every wait for something that must arrive. */
export const WAIT_MS = 10_000;

// ---- the server --------------------------------------------------------------------------

/**
 * Sends `signal` to `child` and waits for `exited`; a child still running after `ms` is
 * sent SIGKILL, waited for, and the answer is `'timeout'`. Shared by every service a test
 * starts (the server here, Redis and nginx in tests/cluster/services.mjs).
 */
export async function signalChild(child, exited, signal, ms) {
  child.kill(signal);
  let timer;
  const timeout = new Promise((resolveTimeout) => { timer = setTimeout(resolveTimeout, ms, 'timeout'); });
  const result = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
  return result;
}

/** A `data` listener for a child's output that calls `onLine` with each complete line. */
export function eachLine(onLine) {
  let partial = '';
  return (chunk) => {
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop();
    for (const line of parts) onLine(line);
  };
}

/**
 * The limits per client address (SPEC §13) and their environment variables. Every test
 * server runs with each of them off (0) unless the test sets it: the suites open many
 * sockets and send many clips from 127.0.0.1 to test everything else, one address that
 * the defaults (64 connections, 40 clips a minute) would refuse. The limits' own tests
 * (address-limits.test.mjs) set the ones they test, or pass the default values. The
 * limit on failed moderator sign-ins cannot be turned off: tests of the admin API that
 * fail to sign in more than 10 times spread over 127.0.0.x.
 */
const ADDRESS_LIMITS = [
  ['--max-connections-per-address', 'MAX_CONNECTIONS_PER_ADDRESS'],
  ['--clips-per-address-per-minute', 'CLIPS_PER_ADDRESS_PER_MINUTE'],
];

function limitsOffUnlessSet(args, env) {
  return ADDRESS_LIMITS
    .filter(([flag, variable]) => !args.includes(flag) && env[variable] === undefined)
    .flatMap(([flag]) => [flag, '0']);
}

/**
 * Spawns the server on 127.0.0.1 (or `bind`, e.g. '::1'), any free port (unless `port` is
 * given, as for a restart that clients must find again), and a fresh data dir (unless `dataDir` is given; a dir
 * made here is removed by `cleanup()`), with `env` added to the environment (e.g. the
 * slow-disk shim of tools/slow-fsync.c in LD_PRELOAD). Resolves once it printed
 * `listening on http://…` (or `https://…` with TLS), with
 * `{ url, dataDir, process, stop(), kill9(), signal(name), output(), cleanup() }`.
 * The server's stdout and stderr are kept in memory (`output()`); set LOOPCHAT_E2E_LOG=1 to
 * also stream them, prefixed, to stderr. The limits per address are off unless `args` or
 * `env` set them (see ADDRESS_LIMITS).
 */
export async function startServer({ args = [], dataDir, port = 0, env = {}, bind = '127.0.0.1' } = {}) {
  const ownDir = dataDir === undefined;
  if (ownDir) dataDir = await tempDir('loopchat-e2e-');
  const argv = ['--bind', bind, '--port', String(port), '--data-dir', dataDir, ...limitsOffUnlessSet(args, env), ...args];
  const child = spawn(SERVER_BIN, argv, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG ?? 'info', ...env },
  });
  const lines = [];
  const stream = process.env.LOOPCHAT_E2E_LOG === '1';
  const exited = new Promise((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
    child.once('error', (error) => resolveExit({ code: null, signal: null, error }));
  });
  let exitInfo = null;
  exited.then((info) => { exitInfo = info; });

  const url = await new Promise((resolveUrl, reject) => {
    let settled = false;
    const settle = (fn, value) => { if (!settled) { settled = true; clearTimeout(timer); fn(value); } };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      settle(reject, new Error(`server did not print "listening on" within ${START_TIMEOUT_MS} ms\n${tail(lines)}`));
    }, START_TIMEOUT_MS);
    const onData = (name) => eachLine((line) => {
      lines.push(`[${name}] ${line}`);
      if (stream) process.stderr.write(`[loopchat ${child.pid} ${name}] ${line}\n`);
      const m = name === 'stdout' && line.match(/listening on (https?:\/\/[^\s]+)/);
      if (m) settle(resolveUrl, m[1].replace(/\/+$/, ''));
    });
    child.stdout.on('data', onData('stdout'));
    child.stderr.on('data', onData('stderr'));
    exited.then(({ code, signal, error }) => settle(reject, Object.assign(new Error(
      `server exited before listening (code ${code}, signal ${signal}${error ? `, ${error.message}` : ''}): ${SERVER_BIN} ${argv.join(' ')}\n${tail(lines)}`),
    // For suites that check how a start is refused: the exit and every line printed.
    { exit: { code, signal }, output: lines.join('\n') })));
  });

  async function signalAndWait(signal) {
    if (exitInfo) return exitInfo;
    const result = await signalChild(child, exited, signal, STOP_TIMEOUT_MS);
    if (result === 'timeout') {
      throw new Error(`server did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}:\n${tail(lines)}`);
    }
    return result;
  }

  return {
    url,
    dataDir,
    process: child,
    output: () => lines.join('\n'),
    /** SIGTERM, then wait for the exit. */
    stop: () => signalAndWait('SIGTERM'),
    /** SIGKILL, then wait for the exit: nothing gets a chance to flush. */
    kill9: () => signalAndWait('SIGKILL'),
    /** Sends `name` (e.g. 'SIGHUP') without waiting for anything. */
    signal: (name) => { child.kill(name); },
    /** Stops the server if it still runs and removes the data dir if it was made here. */
    async cleanup() {
      try {
        if (!exitInfo) await signalAndWait('SIGTERM');
      } finally {
        if (ownDir) await removeDir(dataDir);
      }
    },
  };
}

// Data dirs not removed by cleanup() (e.g. of a suite that only calls stop()), and servers
// still running when the test process ends (a crashed or interrupted test), are removed and
// killed by tests/lib/cleanup.mjs.
export { ROOT };

function tail(lines, n = 60) {
  return lines.slice(-n).join('\n');
}

// ---- per-test harness --------------------------------------------------------------------

/**
 * `e2e(name, fn)` is `test(name, fn)` with a harness `h` as the second argument: servers and
 * clients made through it are cleaned up after the test (clients first, then servers, in
 * reverse order of creation), and when the test fails the output of its servers is printed.
 */
export function e2e(name, fn, options = {}) {
  return test(name, { timeout: 120_000, ...options }, async (t) => {
    const h = new Harness(t);
    t.after(() => h.cleanup());
    try {
      await fn(t, h);
    } catch (error) {
      for (const server of h.servers) {
        process.stderr.write(`\n---- loopchat output (${name}; ${server.url}) ----\n${server.output()}\n---- end ----\n`);
      }
      throw error;
    }
  });
}

export class Harness {
  constructor(t) {
    this.t = t;
    this.servers = [];
    this.cleanups = [];
  }

  /** Starts a server (see startServer) that is stopped after the test. */
  async server(options) {
    const server = await startServer(options);
    this.servers.push(server);
    this.cleanups.push(() => server.cleanup());
    return server;
  }

  /** Connects a client (see connect) that is closed after the test. */
  async client(url, options) {
    const client = connect(url, options);
    this.cleanups.push(() => client.close());
    await client.ready;
    return client;
  }

  async cleanup() {
    const errors = [];
    while (this.cleanups.length) {
      const fn = this.cleanups.pop();
      try { await fn(); } catch (error) { errors.push(error); }
    }
    if (errors.length) throw errors[0];
  }
}

// ---- clients -----------------------------------------------------------------------------

/**
 * Opens a socket.io-client socket (websocket only unless `transports` says otherwise) and
 * records, from before the connection exists, every event it receives. `ready` resolves once
 * `welcome` and then `messages` arrived, with the client itself (`token` is the browser's
 * identity token of SPEC §10, sent as `auth.token`); `welcome` and `replay` are
 * then filled in, and `received.<event>` lists every payload of that event so far.
 * `query` is added to every request's URL (e.g. `{ lb }`, the sticky key of SPEC §8);
 * `reconnection: true` lets the client reconnect as a page does (each reconnection's
 * `welcome` and `messages` are then appended to `received`). `clientOptions` are added to
 * socket.io-client's options as they are, e.g. `{ localAddress: '127.0.0.2' }` (the source
 * address, SPEC §13) or `{ extraHeaders: { 'x-forwarded-for': … } }`; in Node both reach
 * the WebSocket transport's request.
 */
export function connect(url, { name, token, transports = ['websocket'], timeout = WAIT_MS, tls = {}, query, reconnection = false, clientOptions = {} } = {}) {
  // `tls` reaches Node's TLS for both transports (e.g. `{ ca }` to trust a test's own CA).
  const options = { transports, forceNew: true, reconnection, autoConnect: false, ...tls, ...clientOptions };
  if (query !== undefined) options.query = query;
  if (name !== undefined || token !== undefined) options.auth = { name, token };
  const socket = io(url, options);
  const client = {
    socket,
    events: [], // [{ event, args }] in arrival order
    received: { welcome: [], messages: [], message: [], messageack: [], messageerror: [], presence: [] },
    welcome: undefined,
    replay: undefined,
    close: () => { socket.close(); },
  };
  socket.onAny((event, ...args) => {
    client.events.push({ event, args });
    (client.received[event] ??= []).push(args[0]);
  });
  client.ready = new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no welcome+messages within ${timeout} ms (events: ${JSON.stringify(client.events.map((e) => e.event))})`));
    }, timeout);
    socket.once('connect_error', (error) => { clearTimeout(timer); reject(new Error(`connect_error: ${error.message}`)); });
    socket.once('messages', (replay) => {
      clearTimeout(timer);
      client.replay = replay;
      client.welcome = client.received.welcome[0];
      const order = client.events.map((e) => e.event);
      if (order.indexOf('welcome') === -1 || order.indexOf('welcome') > order.indexOf('messages')) {
        reject(new Error(`expected welcome before messages, got ${JSON.stringify(order)}`));
      } else {
        resolveReady(client);
      }
    });
  });
  client.ready.catch(() => {}); // observed by whoever awaits it
  socket.connect();
  return client;
}

/** Resolves with the first argument of the next `event` on `socket`; rejects after `ms`. */
export function once(socket, event, ms = WAIT_MS, where = () => true) {
  return new Promise((resolveEvent, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no "${event}" event within ${ms} ms`));
    }, ms);
    function listener(...args) {
      if (!where(...args)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolveEvent(args[0]);
    }
    socket.on(event, listener);
  });
}

/**
 * A round trip on `socket`'s own connection that has no effect on the server: a connect to
 * a namespace that does not exist, which the server refuses on that same connection. The
 * refusal is written after everything the server had queued for this connection when it
 * read the request, so once it is back, every event sent to `socket` by an action the
 * server had finished before has arrived too.
 */
export async function roundTrip(socket, ms = WAIT_MS) {
  const probe = socket.io.socket(`/round-trip-${Math.random().toString(36).slice(2)}`);
  try {
    await new Promise((resolveTrip, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to a round trip within ${ms} ms`)), ms);
      probe.once('connect_error', () => { clearTimeout(timer); resolveTrip(); });
      probe.once('connect', () => { clearTimeout(timer); reject(new Error('a namespace that must not exist accepted a connection')); });
      probe.connect();
    });
  } finally {
    probe.disconnect();
  }
}

/**
 * Fails if `event` (matching `where`, if given) arrives on `socket` before `marker()`
 * resolves. A marker is something that must arrive after the unwanted event would have, on
 * the same path: by default a `roundTrip` on `socket`, which is enough when that event
 * would be sent by something the server has already answered (a refused clip, an ack);
 * across nodes it must come the same way, e.g. a later event from the same sender.
 * Nothing is watched for a time: a slow machine makes this slower, never wrong.
 *
 * A number in place of the marker (the quiet window this used to watch) is ignored, for
 * callers not yet changed; the default marker is used.
 */
export async function expectNoEvent(socket, event, marker, where = () => true) {
  const seen = [];
  const listener = (...args) => { if (where(...args)) seen.push(args[0]); };
  socket.on(event, listener);
  try {
    await (typeof marker === 'function' ? marker() : roundTrip(socket));
  } finally {
    socket.off(event, listener);
  }
  if (seen.length) throw new Error(`unexpected "${event}" event(s): ${JSON.stringify(seen).slice(0, 500)}`);
}

/** Polls `fn` until it returns a truthy value, which it resolves with; fails after `ms`. */
export async function eventually(fn, what, ms = WAIT_MS, every = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(every);
  }
}

/**
 * Waits until `count` clips were admitted and some of them are still in flight, so that a
 * stop right after catches clips halfway. `readMetrics` resolves to /metrics' text (over
 * plain HTTP or TLS).
 */
export async function untilSomeInFlight(readMetrics, count) {
  await eventually(async () => {
    const metrics = await readMetrics();
    const inFlight = metricValue(metrics, 'loopchat_clips_in_flight');
    return inFlight > 0 && inFlight + metricValue(metrics, 'loopchat_clips_accepted_total') === count;
  }, `all ${count} clips admitted, some still in flight`, WAIT_MS, 5);
}

/**
 * Emits `message` with an ack callback and also waits for the matching `messageack` or
 * `messageerror` event. Resolves with `{ reply, event, eventName }`.
 */
export async function sendClip(socket, payload, ms = WAIT_MS) {
  let stopWaiting;
  const outcome = new Promise((resolveOutcome, reject) => {
    const timer = setTimeout(() => { stopWaiting(); reject(new Error(`neither messageack nor messageerror within ${ms} ms`)); }, ms);
    const onAck = (value) => { stopWaiting(); resolveOutcome({ eventName: 'messageack', event: value }); };
    const onError = (value) => { stopWaiting(); resolveOutcome({ eventName: 'messageerror', event: value }); };
    stopWaiting = () => { clearTimeout(timer); socket.off('messageack', onAck); socket.off('messageerror', onError); };
    socket.on('messageack', onAck);
    socket.on('messageerror', onError);
  });
  outcome.catch(() => {});
  let reply;
  try {
    reply = await socket.timeout(ms).emitWithAck('message', payload);
  } catch (error) {
    stopWaiting();
    throw new Error(`no ack reply to "message" within ${ms} ms (${error.message})`);
  }
  const { event, eventName } = await outcome;
  return { reply, event, eventName };
}

/** Sends a clip that must be accepted; returns the Clip (after checking ack and event agree). */
export async function sendGoodClip(socket, payload) {
  const { reply, event, eventName } = await sendClip(socket, payload);
  if (reply?.ok !== true) throw new Error(`expected { ok: true }, got ${JSON.stringify(reply)}`);
  if (eventName !== 'messageack') throw new Error(`expected messageack, got ${eventName} ${JSON.stringify(event)}`);
  if (event.key !== reply.message.key) throw new Error(`messageack key ${event.key} != ack key ${reply.message.key}`);
  return reply.message;
}

// ---- frames ------------------------------------------------------------------------------

const FIXTURES = resolve(REPO_ROOT, 'tests/fixtures/clip-synth');

/** The ten fixture frames (200×200 JPEG), f-1 … f-10, as fresh Buffers. */
export function loadFrames() {
  return Array.from({ length: 10 }, (_, i) => readFileSync(join(FIXTURES, `f-${i + 1}.jpg`)));
}

export function dataUri(buffer, mime = 'image/jpeg') {
  return `data:${mime};base64,${buffer.toString('base64')}`;
}

/** A copy of a baseline JPEG whose SOF0 header claims `width`×`height`. */
export function patchDimensions(jpeg, width, height) {
  const copy = Buffer.from(jpeg);
  const sof = copy.indexOf(Buffer.from([0xff, 0xc0]));
  if (sof < 0) throw new Error('no SOF0 marker in fixture');
  copy.writeUInt16BE(height, sof + 5);
  copy.writeUInt16BE(width, sof + 7);
  return copy;
}

/**
 * A still valid JPEG of exactly `size` bytes: the fixture with COM (comment) segments
 * inserted after SOI.
 */
export function padJpeg(jpeg, size) {
  let missing = size - jpeg.length;
  if (missing < 0) throw new Error('cannot shrink a JPEG');
  const segments = [];
  while (missing > 0) {
    // A COM segment is 2 marker bytes + 2 length bytes + up to 65533 payload bytes.
    if (missing < 4) throw new Error('padding below 4 bytes is impossible; pick another size');
    let total = Math.min(missing, 4 + 65533);
    if (missing - total > 0 && missing - total < 4) total -= 4; // keep the rest paddable
    const segment = Buffer.alloc(total, 0x61);
    segment[0] = 0xff;
    segment[1] = 0xfe;
    segment.writeUInt16BE(total - 2, 2);
    segments.push(segment);
    missing -= total;
  }
  return Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]);
}

/** A small valid PNG (1×1). */
export const PNG_1x1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

/** Deterministic pseudo-random bytes that do not start like a JPEG. */
export function noise(length, seed = 1) {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i += 1) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  if (out[0] === 0xff) out[0] = 0x00;
  return out;
}

// ---- HTTP --------------------------------------------------------------------------------

/** Fetches `path` (relative to `url`) and decodes it as a GIF; returns details and the body. */
export async function fetchGif(url, path, headers = {}) {
  const response = await fetch(new URL(path, url), { headers });
  const body = Buffer.from(await response.arrayBuffer());
  return { response, body, gif: response.status === 200 ? decodeGif(body) : undefined };
}

/**
 * Decodes a GIF fully (every frame's LZW data) and returns
 * `{ width, height, frames, delays (centiseconds), loopCount (0 = forever, null = no NETSCAPE
 * block), pixels: [Uint8Array RGBA per frame] }`.
 */
export function decodeGif(buffer) {
  const reader = new GifReader(new Uint8Array(buffer));
  const frames = reader.numFrames();
  const delays = [];
  const pixels = [];
  for (let i = 0; i < frames; i += 1) {
    delays.push(reader.frameInfo(i).delay);
    const rgba = new Uint8Array(reader.width * reader.height * 4);
    reader.decodeAndBlitFrameRGBA(i, rgba);
    pixels.push(rgba);
  }
  return { width: reader.width, height: reader.height, frames, delays, loopCount: reader.loopCount(), pixels };
}

/** GET /metrics as text. */
export async function metricsText(url) {
  const response = await fetch(`${url}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return response.text();
}

/**
 * The value of sample `name` (whose labels include every `labels` pair) in Prometheus text,
 * or undefined when there is none.
 */
export function metricValue(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[pair[1]] = pair[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/** The `loopchat_clips_stored` gauge, which must be present. */
export async function clipsStored(url) {
  const value = metricValue(await metricsText(url), 'loopchat_clips_stored');
  if (value === undefined) throw new Error('/metrics has no loopchat_clips_stored sample');
  return value;
}

/**
 * The Clips a brand-new client is replayed on connect; `clientOptions` as for `connect`
 * (e.g. the probe's own source address, where per-address limits are tight).
 */
export async function replayOf(url, clientOptions = {}) {
  const client = connect(url, { name: 'replay-probe', clientOptions });
  try {
    await client.ready;
    return client.replay;
  } finally {
    client.close();
  }
}

/** The keys a brand-new client is replayed on connect. */
export async function replayKeys(url, clientOptions = {}) {
  return (await replayOf(url, clientOptions)).map((clip) => clip.key);
}

export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Checks the shape of a Clip (SPEC §2) against what was sent. `expected` may hold id, author,
 * message, frames, width, height, delay_ms and ttl_ms.
 */
export function assertClip(assert, clip, expected) {
  assert.equal(typeof clip, 'object', 'a Clip is an object');
  assert.match(clip.key, UUID_V7, 'key is a UUIDv7');
  assert.equal(clip.clip, `/clips/${clip.key}.gif`);
  // SPEC §12: every clip made now has its video and poster beside the GIF.
  assert.equal(clip.video, `/clips/${clip.key}.mp4`);
  assert.equal(clip.poster, `/clips/${clip.key}.jpg`);
  assert.ok(Number.isInteger(clip.video_bytes) && clip.video_bytes > 0, `Clip.video_bytes is a positive integer: ${clip.video_bytes}`);
  if ('id' in expected) assert.equal(clip.id, expected.id);
  // `author` may be a welcome's `you`: a Clip's author is its user id and name, not its connection.
  if (expected.author) assert.deepEqual(clip.author, { id: expected.author.id, name: expected.author.name });
  if ('message' in expected) assert.equal(clip.message, expected.message);
  for (const field of ['frames', 'width', 'height', 'delay_ms']) {
    if (field in expected) assert.equal(clip[field], expected[field], `Clip.${field}`);
  }
  assert.ok(Number.isInteger(clip.bytes) && clip.bytes > 0, `Clip.bytes is a positive integer: ${clip.bytes}`);
  assert.ok(Number.isInteger(clip.created_at), 'created_at is an integer');
  // Milliseconds since the epoch, on this very machine: within a minute of now.
  assert.ok(Math.abs(clip.created_at - Date.now()) < 60_000, `created_at ${clip.created_at} is ms since the epoch`);
  if ('ttl_ms' in expected) assert.equal(clip.expires_at - clip.created_at, expected.ttl_ms, 'expires_at = created_at + CLIP_TTL');
}

/** Checks everything about a served clip GIF; returns the response for further checks. */
export async function assertGif(assert, url, clip, { frames, width = 200, height = 200, delayCs = 20, maxAgeAtLeast = 1, maxAgeAtMost = 600 }) {
  const { response, body, gif } = await fetchGif(url, clip.clip);
  assert.equal(response.status, 200, `GET ${clip.clip}`);
  assert.equal(response.headers.get('content-type'), 'image/gif');
  const etag = response.headers.get('etag');
  assert.ok(etag, 'ETag header present');
  const cacheControl = response.headers.get('cache-control');
  const m = /^public, max-age=(\d+), immutable$/.exec(cacheControl ?? '');
  assert.ok(m, `Cache-Control "public, max-age=<n>, immutable", got ${JSON.stringify(cacheControl)}`);
  assert.ok(Number(m[1]) >= maxAgeAtLeast && Number(m[1]) <= maxAgeAtMost, `max-age ${m[1]} is in ${maxAgeAtLeast}..=${maxAgeAtMost} (seconds left)`);
  assert.equal(body.length, clip.bytes, 'Clip.bytes is the GIF size');
  assert.equal(body.subarray(0, 6).toString('latin1'), 'GIF89a');
  assert.equal(gif.frames, frames, 'GIF frame count');
  assert.equal(gif.width, width);
  assert.equal(gif.height, height);
  assert.deepEqual(gif.delays, Array(frames).fill(delayCs), 'every frame delay, in centiseconds');
  if (frames > 1) {
    assert.equal(gif.loopCount, 0, 'NETSCAPE2.0 loop count 0 (loops forever)');
    for (let i = 1; i < frames; i += 1) {
      assert.ok(!Buffer.from(gif.pixels[i]).equals(Buffer.from(gif.pixels[i - 1])), `GIF frame ${i + 1} differs from frame ${i}`);
    }
  }
  return { response, etag, body };
}
