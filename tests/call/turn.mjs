// A coturn of the test's own (WEBRTC.md "TURN relay through coturn"): Debian's
// `turnserver`, started with a config file on a free port inside the test's network
// namespace, and stopped by its PID. The system's coturn service is left alone.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** A TCP port nobody listens on now (coturn takes it for UDP and TCP). */
async function freePort() {
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
  const dir = mkdtempSync(join(tmpdir(), 'loopchat-turn-'));
  const port = await freePort();
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

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!/UDP listener opened on: 127\.0\.0\.1:\d+/.test(log() + output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const why = `${output}\n${log()}`;
      await stop();
      throw new Error(`turnserver did not start: ${why}`);
    }
    await sleep(50);
  }
  return { url: `turn:127.0.0.1:${port}`, secret, log, stop };
}
