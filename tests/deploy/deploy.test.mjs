// The deployment files in deploy/: the systemd unit passes `systemd-analyze verify` (with
// its ExecStart pointed at the built binary, which verify requires to exist) without a
// single warning, scores as hardened in `systemd-analyze security`, and sets only
// variables loopchat reads; the certbot deploy hook, run as certbot runs it, puts a
// renewed certificate in place and has a running loopchat serve it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { test } from 'node:test';
import { REPO_ROOT, SERVER_BIN, e2e, eventually } from '../e2e/helpers.mjs';

const UNIT = readFileSync(resolve(REPO_ROOT, 'deploy/loopchat.service'), 'utf8');
const HOOK = resolve(REPO_ROOT, 'deploy/certbot-deploy-hook');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
/** `systemd-analyze security` exposure, in tenths, that the unit must stay at or below ("OK"). */
const MAX_EXPOSURE = 20;

function tempDir(t, prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The unit with ExecStart on the built binary, in a fresh folder: its path. */
function unitForThisBuild(t) {
  const dir = tempDir(t, 'loopchat-unit-');
  const path = join(dir, 'loopchat.service');
  const lines = UNIT.split('\n');
  const exec = lines.findIndex((line) => line.startsWith('ExecStart='));
  assert.ok(exec >= 0, 'the unit has an ExecStart=');
  assert.equal(lines[exec], 'ExecStart=/usr/local/bin/loopchat', 'the path the README installs to');
  lines[exec] = `ExecStart=${SERVER_BIN}`;
  writeFileSync(path, lines.join('\n'));
  return path;
}

function analyze(...args) {
  return spawnSync(SYSTEMD_ANALYZE, args, { encoding: 'utf8' });
}

test('systemd-analyze verify passes the unit without a warning', (t) => {
  const result = analyze('verify', unitForThisBuild(t));
  assert.equal(result.error, undefined, `${SYSTEMD_ANALYZE} runs (it ships with systemd)`);
  assert.equal(result.status, 0, result.stderr);
  // verify exits 0 on unknown keys and bad values, only warning about them.
  assert.equal(result.stderr.trim(), '', 'no warnings');
});

test('systemd-analyze security rates the unit OK', (t) => {
  const result = analyze('security', '--offline=true', `--threshold=${MAX_EXPOSURE}`, unitForThisBuild(t));
  assert.equal(result.status, 0, `exposure above ${MAX_EXPOSURE / 10}:\n${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /Overall exposure level for loopchat\.service: \d\.\d/);
});

test('the unit is hardened as the README says and runs loopchat as its own user', () => {
  const settings = new Map();
  for (const line of UNIT.split('\n')) {
    const m = line.match(/^([A-Za-z]+)=(.*)$/);
    if (m) settings.set(m[1], [...(settings.get(m[1]) ?? []), m[2]]);
  }
  const one = (key) => settings.get(key)?.at(-1);
  assert.equal(one('User'), 'loopchat');
  assert.equal(one('StateDirectory'), 'loopchat');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('ProtectHome'), 'yes');
  assert.equal(one('PrivateTmp'), 'yes');
  assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
  assert.equal(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  const environment = Object.fromEntries(settings.get('Environment').map((value) => value.split(/=(.*)/s).slice(0, 2)));
  assert.equal(environment.DATA_DIR, '/var/lib/loopchat', 'the data dir is the StateDirectory');
  assert.ok(Number(environment.PORT) < 1024, 'it binds a port below 1024, hence the capability');

  // Every variable it sets is one loopchat reads: a typo would be silently ignored.
  const help = execFileSync(SERVER_BIN, ['--help'], { encoding: 'utf8' });
  const known = new Set([...help.matchAll(/\[env: ([A-Z_]+)=/g)].map((m) => m[1]));
  known.add('RUST_LOG');
  for (const name of Object.keys(environment)) assert.ok(known.has(name), `loopchat reads ${name}`);
});

// ---- the certbot deploy hook --------------------------------------------------------------

/** A self-signed certificate for localhost in `dir` as certbot names its files. */
function lineage(dir) {
  mkdirSync(dir, { recursive: true });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', join(dir, 'privkey.pem'), '-out', join(dir, 'fullchain.pem'), '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new X509Certificate(readFileSync(join(dir, 'fullchain.pem'))).fingerprint256;
}

function servedFingerprint(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolvePeer, reject) => {
    const socket = connectTls({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      resolvePeer(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once('error', reject);
  });
}

e2e('the certbot deploy hook installs a renewal and the running server serves it', async (t, h) => {
  const dir = tempDir(t, 'loopchat-hook-');
  const tlsDir = join(dir, 'etc-loopchat-tls');
  // systemctl as the hook uses it, standing in for systemd: `reload loopchat` is the
  // unit's ExecReload, a SIGHUP to the server.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const calls = join(dir, 'systemctl-calls');
  // It is active when the test gives it the server's pid.
  writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> '${calls}'\ncase "$1" in\n  is-active) [ -n "$LOOPCHAT_PID" ] ;;\n  reload) kill -HUP "$LOOPCHAT_PID" ;;\nesac\n`);
  chmodSync(join(bin, 'systemctl'), 0o755);
  const runHook = (renewed, pid) => execFileSync(HOOK, [], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, RENEWED_LINEAGE: renewed, LOOPCHAT_TLS_DIR: tlsDir, LOOPCHAT_GROUP: 'root', LOOPCHAT_PID: String(pid ?? '') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  // First issue: nothing runs yet, so nothing is reloaded.
  const firstFingerprint = lineage(join(dir, 'live-1'));
  runHook(join(dir, 'live-1'));
  assert.doesNotMatch(readFileSync(calls, 'utf8'), /reload/, 'no reload without a running service');
  assert.equal(statSync(join(tlsDir, 'privkey.pem')).mode & 0o777, 0o640, 'the key is readable by the group only');
  assert.equal(statSync(tlsDir).mode & 0o777, 0o750);

  const server = await h.server({ env: { TLS_CERT: join(tlsDir, 'fullchain.pem'), TLS_KEY: join(tlsDir, 'privkey.pem') } });
  assert.equal(await servedFingerprint(server.url), firstFingerprint);

  // The renewal.
  const renewedFingerprint = lineage(join(dir, 'live-2'));
  runHook(join(dir, 'live-2'), server.process.pid);
  assert.match(readFileSync(calls, 'utf8'), /reload loopchat/);
  await eventually(async () => (await servedFingerprint(server.url)) === renewedFingerprint, 'the renewed certificate served');
});
