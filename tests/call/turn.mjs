// A coturn of the test's own (WEBRTC.md "TURN relay through coturn"): Debian's
// `turnserver`, started with a config file inside the test's network namespace, and stopped
// by its PID, or by tests/lib/cleanup.mjs if the test file ends before. The system's coturn
// service is left alone.
//
// coturn needs a port number and does not take 0. The port is one that was free a moment
// ago; another process (a test file running beside this one) may bind it first, and then
// coturn does not exit but retries the bind forever: its log says `errno=98` (address in
// use). That attempt is stopped and coturn started again on another port.
import '../lib/cleanup.mjs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
/** How many ports coturn is tried on before its start counts as failed. */
const PORT_TRIES = 5;

/** A TCP port nobody listened on a moment ago (coturn takes it for UDP and TCP). */
async function unusedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts `turnserver` with a REST-API shared secret; resolves with `{ url, secret,
 * log(), stop() }` once it listens. `url` is `turn:127.0.0.1:<port>`.
 */
export async function startTurn() {
  for (let attempt = 1; ; attempt += 1) {
    const turn = await startTurnOn(await unusedPort());
    if (turn.url) return turn;
    if (attempt === PORT_TRIES) throw new Error(`turnserver found its port taken ${PORT_TRIES} times in a row:\n${turn.why}`);
  }
}

/** One attempt on `port`: the server, or `{ why }` when the port was taken. */
async function startTurnOn(port) {
  const dir = mkdtempSync(join(tmpdir(), 'loopchat-turn-'));
  const secret = randomBytes(24).toString('hex');
  const logFile = join(dir, 'turn.log');
  const config = join(dir, 'turnserver.conf');
  writeFileSync(config, [
    'listening-ip=127.0.0.1',
    `listening-port=${port}`,
    'realm=loopchat.test',
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'no-tls',
    'no-dtls',
    // Without it coturn refuses to relay to 127.0.0.1 (403 Forbidden IP); it requires no-cli.
    'allow-loopback-peers',
    'no-cli',
    `log-file=${logFile}`,
    'simple-log',
    'verbose',
    `pidfile=${join(dir, 'turnserver.pid')}`,
    // Its own (empty) user database, not the system's /var/lib/turn.
    `userdb=${join(dir, 'turndb')}`,
    '',
  ].join('\n'));
  const child = spawn('turnserver', ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), sleep(STOP_TIMEOUT_MS, false)]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // Both listeners, UDP and TCP, on this port (coturn logs each as it opens it).
  const listening = (text) => text.includes(`UDP listener opened on: 127.0.0.1:${port}`)
    && text.includes(`TCP listener opened on : 127.0.0.1:${port}`);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const text = log() + output;
    if (listening(text)) break;
    if (/errno=98\b/.test(text)) {
      await stop();
      return { why: text };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`turnserver did not start: ${text}`);
    }
    await sleep(50);
  }
  return { url: `turn:127.0.0.1:${port}`, secret, log, stop };
}
