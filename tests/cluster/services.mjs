// The services a cluster test (SPEC §8) starts for itself: Debian's redis-server and nginx,
// each with its own temporary folder, and `startCluster`, which puts loopchat nodes
// (helpers.mjs `startServer`) between the two. Nothing here uses a system-wide Redis or
// nginx: every process is started here and stopped by its PID, at the end of its test, or,
// if the test file crashes or is interrupted, by tests/lib/cleanup.mjs.
//
// No port is picked here and bound later, a race that `node --test`, running files side by
// side, could lose: Redis listens on a Unix socket in its own folder only (`--port 0`), the
// nodes take port 0 and print theirs, and nginx, which needs a number in its `listen`, is
// started again on another port if the one it was given was taken meanwhile.
//
// nginx runs deploy/nginx/loopchat.conf itself, rendered with only its `listen` line and its
// upstream's `server` lines replaced (see `renderNginxConfig`), inside a small main
// configuration that keeps every log and temporary file in the instance's own folder.
import { spawn, execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before } from 'node:test';
import { REPO_ROOT, e2e, eachLine, signalChild, startServer } from '../e2e/helpers.mjs';
import { removeDir, tempDir } from '../lib/cleanup.mjs';

const run = promisify(execFile);

export const NGINX_CONFIG = resolve(REPO_ROOT, 'deploy/nginx/loopchat.conf');
const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? 'redis-cli';
// Debian installs nginx in /usr/sbin, which is not on every PATH.
const NGINX_BIN = process.env.NGINX_BIN ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');
/** How long a service may take to start or stop before the test fails. */
const SERVICE_TIMEOUT_MS = 10_000;
/** How many ports nginx is tried on before its start counts as failed. */
const NGINX_PORT_TRIES = 5;

/** A TCP port of 127.0.0.1 that was free a moment ago: only for a program that needs a number. */
async function unusedPort() {
  const server = createServer();
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolveListen);
  });
  const { port } = server.address();
  await new Promise((resolveClose) => server.close(resolveClose));
  return port;
}

async function ownDir(prefix) {
  return tempDir(prefix);
}

/**
 * Spawns `bin args`, keeping its output in `lines`; resolves once `isReady()` (polled, and
 * after every line) holds, rejects if it exits first or takes longer than SERVICE_TIMEOUT_MS.
 */
async function launch(bin, args, { lines, isReady, what, env = {} }) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const exited = new Promise((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
    child.once('error', (error) => resolveExit({ code: null, signal: null, error }));
  });
  const stream = process.env.LOOPCHAT_E2E_LOG === '1';
  const onData = (name) => eachLine((line) => {
    lines.push(line);
    if (stream) process.stderr.write(`[${what} ${child.pid} ${name}] ${line}\n`);
  });
  child.stdout.on('data', onData('stdout'));
  child.stderr.on('data', onData('stderr'));

  const deadline = Date.now() + SERVICE_TIMEOUT_MS;
  let exitInfo = null;
  exited.then((info) => { exitInfo = info; });
  for (;;) {
    if (exitInfo) {
      const { code, signal, error } = exitInfo;
      throw new Error(`${what} exited while starting (code ${code}, signal ${signal}${error ? `, ${error.message}` : ''}): ${bin} ${args.join(' ')}\n${lines.slice(-40).join('\n')}`);
    }
    if (await isReady()) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${what} did not start within ${SERVICE_TIMEOUT_MS} ms: ${bin} ${args.join(' ')}\n${lines.slice(-40).join('\n')}`);
    }
    await sleep(20);
  }
  return { child, exited, exitInfo: () => exitInfo };
}

/** Sends `signal` and waits for the exit; SIGKILL after SERVICE_TIMEOUT_MS. */
async function stopProcess({ child, exited, exitInfo }, signal, what) {
  if (exitInfo()) return exitInfo();
  const result = await signalChild(child, exited, signal, SERVICE_TIMEOUT_MS);
  if (result === 'timeout') throw new Error(`${what} did not exit within ${SERVICE_TIMEOUT_MS} ms of ${signal}`);
  return result;
}

// ---- Redis ---------------------------------------------------------------------------------

/**
 * Starts Debian's redis-server with its data and its Unix socket (`redis.sock`, its only
 * listener: `--port 0`) in a fresh folder (or `dir`), durable as cluster mode requires by
 * default: `appendonly yes`, `appendfsync always`, no RDB snapshots. `appendonly` /
 * `appendfsync` weaken that for the start-up check's tests; `args` are added (e.g.
 * `['--rename-command', 'CONFIG', '']`).
 *
 * Resolves once Redis accepts connections, with `{ socket, url, dir, pid(), start(), stop(),
 * kill9(), cli(...args), keys(), output(), cleanup() }`: `url` is `unix://<socket>`, which
 * loopchat's --redis-url takes; `start()` starts it again on the same socket and folder
 * after a stop, as an operator's restart does (no port to lose meanwhile).
 */
export async function startRedis({ dir, appendonly = 'yes', appendfsync = 'always', args = [] } = {}) {
  const madeDir = dir === undefined;
  dir ??= await ownDir('loopchat-redis-');
  const socket = join(dir, 'redis.sock');
  const argv = [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir,
    '--appendonly', appendonly, '--appendfsync', appendfsync, '--save', '',
    '--daemonize', 'no', '--logfile', '', ...args,
  ];
  const lines = [];
  let current = null;

  async function start() {
    if (current && !current.exitInfo()) throw new Error(`redis on ${socket} is already running`);
    const from = lines.length;
    current = await launch(REDIS_BIN, argv, {
      lines,
      what: 'redis-server',
      // Printed once the data (the append-only file) is loaded and the socket is open:
      // "The server is now ready to accept connections at <socket>".
      isReady: () => lines.slice(from).some((line) => /ready to accept connections/i.test(line)),
    });
  }
  await start();

  const redis = {
    socket,
    url: `unix://${socket}`,
    dir,
    pid: () => current.child.pid,
    start,
    /** SIGTERM: Redis writes what it has and exits. */
    stop: () => stopProcess(current, 'SIGTERM', 'redis-server'),
    /** SIGKILL: only what reached the disk (the fsynced append-only file) is left. */
    kill9: () => stopProcess(current, 'SIGKILL', 'redis-server'),
    /** Runs a command with redis-cli against this instance; resolves with its output. */
    async cli(...args) {
      const { stdout } = await run(REDIS_CLI, ['-s', socket, ...args], { timeout: SERVICE_TIMEOUT_MS });
      return stdout.replace(/\n$/, '');
    },
    /** Every key in the instance (SCAN, not KEYS). */
    async keys() {
      const out = await redis.cli('--scan');
      return out === '' ? [] : out.split('\n');
    },
    output: () => lines.join('\n'),
    async cleanup() {
      try {
        if (!current.exitInfo()) await redis.stop();
      } finally {
        if (madeDir) await removeDir(dir);
      }
    },
  };
  return redis;
}

/** A clip key as the server issues them (SPEC §2: UUIDv7), anywhere in a string. */
const UUID_V7_IN = /[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g;

/** The time a UUIDv7 was made, in ms since the epoch (its first 48 bits). */
const uuidTime = (uuid) => parseInt(uuid.slice(0, 8) + uuid.slice(9, 13), 16);

/**
 * The clips Redis holds anything for: the distinct clip keys (UUIDv7) in its key names,
 * made at `since` or later. A clip key is made when its clip is; other UUIDv7s a node may put
 * in key names (its own node id) are made when it starts, so `since` = the moment every node
 * had started (`cluster.startedAt`) leaves only clips. Whatever else a node keeps (the replay
 * order, bans, the id secret) is not named by a clip key; so a refused clip that left
 * anything behind changes what this finds.
 */
export async function clipKeysInRedis(redis, since = 0) {
  const found = new Set();
  for (const key of await redis.keys()) {
    for (const [uuid] of key.matchAll(UUID_V7_IN)) if (uuidTime(uuid) >= since) found.add(uuid);
  }
  return found;
}

// ---- a network that loses answers -----------------------------------------------------------

/**
 * A TCP proxy on 127.0.0.1 (a port of its own, taken with port 0) to `redis`'s socket, standing for a network that fails
 * between a command and its answer. `loseAnswers()` stops passing back what Redis sends
 * (commands still reach it, so they run); `heal()` passes answers again and ends every
 * connection that lost one, since its replies are out of step for good, so its client
 * connects again. `close()` ends it all.
 */
export async function startAnswerLosingProxy(redis) {
  const pairs = new Set();
  let losing = false;
  const server = createServer((client) => {
    const upstream = createConnection({ path: redis.socket });
    const pair = { client, upstream, lost: false };
    pairs.add(pair);
    client.on('data', (bytes) => upstream.write(bytes));
    upstream.on('data', (bytes) => {
      if (losing) pair.lost = true;
      else client.write(bytes);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('close', end);
      socket.on('error', end);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endAll = (which) => { for (const pair of [...pairs]) if (which(pair)) { pair.client.destroy(); pair.upstream.destroy(); } };
  return {
    url: `redis://127.0.0.1:${server.address().port}/`,
    loseAnswers() { losing = true; },
    heal() {
      losing = false;
      endAll((pair) => pair.lost);
    },
    close() {
      endAll(() => true);
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// ---- nginx ---------------------------------------------------------------------------------

/**
 * deploy/nginx/loopchat.conf with its one `listen` directive set to `listen` and the
 * `server` lines of its `upstream loopchat` block replaced by one per address of `servers`.
 * Everything else is kept byte for byte; a file that no longer has exactly that shape is an
 * error rather than a config the tests would silently not exercise.
 */
export function renderNginxConfig(text, { listen, servers }) {
  const lines = text.split('\n');
  const directive = (line) => line.replace(/#.*/, '').trim();
  const listens = lines.flatMap((line, i) => (/^listen\s+[^;]+;$/.test(directive(line)) ? [i] : []));
  if (listens.length !== 1) throw new Error(`${NGINX_CONFIG}: expected exactly one listen directive, found ${listens.length}`);
  const start = lines.findIndex((line) => /^upstream\s+loopchat\s*\{$/.test(directive(line)));
  if (start < 0) throw new Error(`${NGINX_CONFIG}: no "upstream loopchat {" block`);
  const end = lines.findIndex((line, i) => i > start && directive(line) === '}');
  const nodeLines = lines.flatMap((line, i) => (i > start && i < end && /^server\s+\S+.*;$/.test(directive(line)) ? [i] : []));
  if (nodeLines.length === 0) throw new Error(`${NGINX_CONFIG}: no server line in the upstream block`);

  const indent = (i) => lines[i].match(/^\s*/)[0];
  const listenLine = `${indent(listens[0])}listen ${listen};`;
  const serverLines = servers.map((address) => `${indent(nodeLines[0])}server ${address};`);
  return lines.flatMap((line, i) => {
    if (i === listens[0]) return [listenLine];
    if (i === nodeLines[0]) return serverLines;
    if (nodeLines.includes(i)) return [];
    return [line];
  }).join('\n');
}

/**
 * The main configuration around the rendered file: what an operator's /etc/nginx/nginx.conf
 * provides, with every path inside `dir`.
 */
function mainConfig(dir, workers) {
  return `# A test's own nginx (tests/cluster/services.mjs): every file inside ${dir}.
worker_processes ${workers};
worker_rlimit_nofile 16384;
# notice: "start worker processes" is how startNginx knows the port was bound.
error_log ${dir}/error.log notice;
events {
    # Each client holds two connections here (its own and the one to its node).
    worker_connections 8192;
}
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/loopchat.conf;
}
`;
}

function portOpen(port) {
  return new Promise((resolveOpen) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolveOpen(true); });
    socket.once('error', () => resolveOpen(false));
  });
}

/**
 * Starts nginx with deploy/nginx/loopchat.conf in front of `nodes` (base URLs such as
 * `http://127.0.0.1:41234`), listening on 127.0.0.1, a free port, with `workers` worker
 * processes (one, or e.g. 'auto' for the load tool). Resolves once the port accepts
 * connections, with `{ url, dir, config, pid, pids(), stop(), output(), cleanup() }`
 * (`config` is the rendered file; `pids()` the master's and its workers').
 */
export async function startNginx({ nodes, workers = 1 }) {
  const dir = await ownDir('loopchat-nginx-');
  // Workers run as `nobody` when nginx is started by root; they reach the temp folders
  // that the master makes (and hands to them) inside this one.
  await chmod(dir, 0o755);
  const errorLog = join(dir, 'error.log');
  const lines = [];
  const argv = ['-e', errorLog, '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`];
  await writeFile(join(dir, 'nginx.conf'), mainConfig(dir, workers));
  const template = await readFile(NGINX_CONFIG, 'utf8');
  // nginx needs a number in its `listen`: a port free a moment ago, which another process
  // (a test file running beside this one) may take before nginx binds it. Then nginx logs
  // "Address already in use" and is started again on another port.
  const bindFailed = () => /bind\(\) to \S+ failed \(98: Address already in use\)/.test(readLog(errorLog));
  for (let attempt = 1; ; attempt += 1) {
    const port = await unusedPort();
    const config = renderNginxConfig(template, {
      listen: `127.0.0.1:${port}`,
      servers: nodes.map((url) => new URL(url).host),
    });
    await writeFile(join(dir, 'loopchat.conf'), config);
    await writeFile(errorLog, '');
    lines.length = 0;
    let proc;
    try {
      proc = await launch(NGINX_BIN, argv, {
        lines,
        what: 'nginx',
        // "start worker processes" comes once every listen socket is bound.
        isReady: async () => bindFailed() || (readLog(errorLog).includes('start worker processes') && await portOpen(port)),
      });
    } catch (error) {
      if (bindFailed() && attempt < NGINX_PORT_TRIES) continue;
      error.message += `\n${readLog(errorLog)}`;
      await removeDir(dir);
      throw error;
    }
    if (bindFailed()) {
      // Still retrying the bind (nginx tries five times); no worker has started yet.
      await stopProcess(proc, 'SIGKILL', 'nginx');
      if (attempt < NGINX_PORT_TRIES) continue;
      const log = readLog(errorLog);
      await removeDir(dir);
      throw new Error(`nginx found its port taken ${NGINX_PORT_TRIES} times in a row:\n${log}`);
    }
    const nginx = {
      url: `http://127.0.0.1:${port}`,
      dir,
      config,
      pid: proc.child.pid,
      pids: () => [proc.child.pid, ...readLog(`/proc/${proc.child.pid}/task/${proc.child.pid}/children`).trim().split(/\s+/).filter(Boolean).map(Number)],
      // The master stops its workers on SIGTERM; after a SIGKILL they would linger.
      stop: () => stopProcess(proc, 'SIGTERM', 'nginx'),
      output: () => [...lines, readLog(errorLog)].join('\n'),
      async cleanup() {
        try {
          await nginx.stop();
        } finally {
          await removeDir(dir);
        }
      },
    };
    return nginx;
  }
}

function readLog(path) {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}

// ---- a cluster -----------------------------------------------------------------------------

/**
 * Starts a Redis (`redis` options as for startRedis), `nodes` loopchat nodes on it (each
 * started with `--redis-url <that Redis>` and `args`, plus `nodeArgs[i]` for node i), and,
 * unless `nginx: false`, nginx in front of them. Resolves with `{ redis, nodes, nginx, url
 * (nginx's), startedAt, stop(), logs() }`; `stop()` stops nginx, the nodes and Redis, in that order.
 */
export async function startCluster({ nodes: count = 2, args = [], nodeArgs = [], redis: redisOptions = {}, nginx: withNginx = true } = {}) {
  const cluster = { redis: null, nodes: [], nginx: null, url: undefined };
  cluster.stop = async () => {
    const errors = [];
    for (const service of [cluster.nginx, ...[...cluster.nodes].reverse(), cluster.redis]) {
      try { await service?.cleanup(); } catch (error) { errors.push(error); }
    }
    if (errors.length) throw errors[0];
  };
  /** `{ url, output() }` of every service, as the e2e harness prints them when a test fails. */
  cluster.logs = () => [
    ...cluster.nodes.map((node, i) => ({ url: `node ${i} ${node.url}`, output: node.output })),
    ...(cluster.redis ? [{ url: `redis ${cluster.redis.url}`, output: cluster.redis.output }] : []),
    ...(cluster.nginx ? [{ url: `nginx ${cluster.nginx.url}`, output: cluster.nginx.output }] : []),
  ];
  try {
    cluster.redis = await startRedis(redisOptions);
    for (let i = 0; i < count; i += 1) {
      cluster.nodes.push(await startServer({ args: ['--redis-url', cluster.redis.url, ...args, ...(nodeArgs[i] ?? [])] }));
    }
    // Every id a node makes for itself at start is older than this (see clipKeysInRedis).
    cluster.startedAt = Date.now() + 1;
    if (withNginx) {
      cluster.nginx = await startNginx({ nodes: cluster.nodes.map((node) => node.url) });
      cluster.url = cluster.nginx.url;
    }
  } catch (error) {
    await cluster.stop().catch(() => {});
    throw error;
  }
  return cluster;
}

/**
 * One cluster shared by the tests of a file: started before the first, stopped after the
 * last. Returns a handle whose `cluster` is set once started; `test(name, fn)` is the e2e
 * harness's test with the cluster as a third argument, printing every service's output when
 * it fails. Tests that share it must leave it as they found it (clients close, Redis runs).
 */
export function sharedCluster(options) {
  const handle = { cluster: null };
  before(async () => { handle.cluster = await startCluster(options); });
  after(async () => { await handle.cluster?.stop(); });
  handle.test = (name, fn, testOptions) => clusterTest(name, () => handle.cluster, fn, testOptions);
  return handle;
}

/**
 * A test that starts its own cluster (or takes `cluster()`'s) with the e2e harness `h`:
 * `fn(t, h, cluster)`. A cluster started by `h.cluster(options)` is stopped after the test.
 */
export function clusterTest(name, cluster, fn, options) {
  return e2e(name, async (t, h) => {
    h.cluster = async (clusterOptions) => {
      const own = await startCluster(clusterOptions);
      h.cleanups.push(() => own.stop());
      h.servers.push(...own.logs());
      return own;
    };
    const shared = cluster?.();
    if (shared) h.servers.push(...shared.logs());
    await fn(t, h, shared);
  }, options);
}
