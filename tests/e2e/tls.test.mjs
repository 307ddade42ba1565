// HTTPS (SPEC §11) against the real server: the official client over wss:// and https://
// long-polling, trusting only a root CA this suite makes with the openssl CLI (so the
// intermediate must come from the server's chain); SIGHUP reloads; the redirect listener;
// the self-signed certificate; and the one-line start-up errors.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { after } from 'node:test';
import {
  SERVER_BIN, WAIT_MS, decodeGif, e2e, eventually, loadFrames, once, sendGoodClip,
  untilSomeInFlight,
} from './helpers.mjs';

const FRAMES = loadFrames();

// ---- a small PKI made with openssl -------------------------------------------------------

const PKI = mkdtempSync(join(tmpdir(), 'loopchat-tls-'));
after(() => rmSync(PKI, { recursive: true, force: true }));

function openssl(...args) {
  execFileSync('openssl', args, { cwd: PKI, stdio: ['ignore', 'ignore', 'pipe'] });
}

function ecKey(name) {
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
}

/** Signs `name`.key's request as `name`.crt with `issuer` and the extensions in `ext`. */
function sign(name, subject, issuer, ext) {
  openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${subject}`, '-out', `${name}.csr`);
  writeFileSync(join(PKI, `${name}.ext`), ext);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`,
    '-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6)}`,
    '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
}

ecKey('root');
openssl('req', '-x509', '-new', '-key', 'root.key', '-subj', '/CN=loopchat test root', '-days', '2',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  '-out', 'root.crt');
ecKey('intermediate');
sign('intermediate', 'loopchat test intermediate', 'root',
  'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');

/** The root CA that clients trust: nothing else. */
const CA = readFileSync(join(PKI, 'root.crt'));
let leaves = 0;

/**
 * A new leaf for localhost, loopchat.test and 127.0.0.1, signed by the intermediate.
 * Returns `{ cert, key, fingerprint }`: `cert` is a file with the leaf then the
 * intermediate, `key` its key, `fingerprint` the leaf's SHA-256 as Node prints it.
 */
function makeLeaf() {
  leaves += 1;
  const name = `leaf-${leaves}`;
  ecKey(name);
  sign(name, 'localhost', 'intermediate',
    'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:loopchat.test,IP:127.0.0.1\n');
  const leaf = readFileSync(join(PKI, `${name}.crt`));
  const chain = join(PKI, `${name}-chain.pem`);
  writeFileSync(chain, Buffer.concat([leaf, readFileSync(join(PKI, 'intermediate.crt'))]));
  return { cert: chain, key: join(PKI, `${name}.key`), fingerprint: new X509Certificate(leaf).fingerprint256 };
}

// ---- clients ------------------------------------------------------------------------------

/** The fingerprint and alt names of the certificate a new TLS connection to `url` gets. */
function peerCertificate(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolvePeer, reject) => {
    const socket = connectTls({ host: hostname, port: Number(port), ca: CA, servername: 'localhost' }, () => {
      const peer = socket.getPeerCertificate();
      socket.end();
      resolvePeer({ fingerprint: peer.fingerprint256, altNames: peer.subjectaltname });
    });
    socket.once('error', reject);
    socket.setTimeout(WAIT_MS, () => socket.destroy(new Error('TLS connection timed out')));
  });
}

/** GET over HTTPS, trusting only the test CA: `{ status, headers, body }`. */
function httpsGet(url, ca = CA) {
  return new Promise((resolveGet, reject) => {
    const req = httpsRequest(url, { ca, timeout: WAIT_MS }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolveGet({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.once('error', reject);
    req.end();
  });
}

/** Plain HTTP GET of `path` on `port` with the Host header `host`: `{ status, headers }`. */
function httpGet(port, path, host) {
  return new Promise((resolveGet, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, timeout: WAIT_MS }, (response) => {
      response.resume();
      response.on('end', () => resolveGet({ status: response.statusCode, headers: response.headers }));
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.once('error', reject);
    req.end();
  });
}

function tlsArgs(leaf) {
  return ['--tls-cert', leaf.cert, '--tls-key', leaf.key];
}

/** Runs the server with `args` until it exits (it must fail to start): `{ code, stdout, stderr }`. */
function runToExit(args) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(SERVER_BIN, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', RUST_BACKTRACE: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`still running: ${args.join(' ')}\n${stdout}${stderr}`)); }, 20_000);
    child.once('error', (error) => { clearTimeout(timer); reject(error); });
    child.once('exit', (code) => { clearTimeout(timer); resolveRun({ code, stdout, stderr }); });
  });
}

/** Checks a refused start: exit 1, one line on stderr (which it returns), no backtrace. */
function assertOneLineRefusal(result) {
  assert.equal(result.code, 1, `exit code 1\n${result.stdout}${result.stderr}`);
  assert.doesNotMatch(result.stdout, /listening on/, 'nothing is announced');
  const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
  assert.equal(lines.length, 1, `exactly one line on stderr:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /backtrace|panicked|^Error:/im);
  assert.match(lines[0], /^loopchat: /);
  return lines[0];
}

// ---- serving over TLS ---------------------------------------------------------------------

for (const transport of ['websocket', 'polling']) {
  const scheme = transport === 'websocket' ? 'wss://' : 'https:// long-polling';
  e2e(`over ${scheme}: welcome, a clip acked, broadcast, and its GIF over HTTPS with HSTS`, async (t, h) => {
    const leaf = makeLeaf();
    const server = await h.server({ args: tlsArgs(leaf) });
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the printed URL is https://');
    const options = { transports: [transport], tls: { ca: CA } };
    const alice = await h.client(server.url, { name: 'alice', ...options });
    const bob = await h.client(server.url, { name: 'bob', ...options });
    assert.equal(alice.welcome.you.name, 'alice');
    assert.equal(alice.socket.io.engine.transport.name, transport, `the ${transport} transport is used`);

    const broadcast = once(bob.socket, 'message');
    const clip = await sendGoodClip(alice.socket, { id: 'tls-1', message: 'over tls', frames: FRAMES.slice(0, 3) });
    assert.equal((await broadcast).key, clip.key, 'bob gets the clip');
    assert.deepEqual(clip.author, { id: alice.welcome.you.id, name: 'alice' });

    const gif = await httpsGet(`${server.url}${clip.clip}`);
    assert.equal(gif.status, 200);
    assert.equal(gif.headers['content-type'], 'image/gif');
    assert.equal(gif.body.length, clip.bytes);
    assert.equal(decodeGif(gif.body).frames, 3);
    assert.match(gif.headers['strict-transport-security'] ?? '', /^max-age=\d{7,}$/, 'HSTS on the GIF');
    const page = await httpsGet(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.ok(page.headers['strict-transport-security'], 'HSTS on the page');
  });
}

e2e('without TLS the URL stays http:// and there is no HSTS', async (t, h) => {
  const server = await h.server();
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const response = await fetch(`${server.url}/healthz`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('strict-transport-security'), null);
});

e2e('a plain-HTTP request and a silent socket on the TLS port hold up no one', async (t, h) => {
  const server = await h.server({ args: tlsArgs(makeLeaf()) });
  const { port } = new URL(server.url);

  // Sockets that never start their handshake stay open while others are served. Several,
  // so that handshakes waited for one after another would hold the port for longer than
  // any wait below.
  const silent = [];
  for (let i = 0; i < 5; i += 1) {
    const socket = connectTcp({ host: '127.0.0.1', port: Number(port) });
    t.after(() => socket.destroy());
    await once(socket, 'connect');
    silent.push(socket);
  }

  const plain = connectTcp({ host: '127.0.0.1', port: Number(port) }, () => {
    plain.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  });
  plain.on('error', () => {});
  plain.resume();
  await once(plain, 'close', WAIT_MS);

  const client = await h.client(server.url, { name: 'after', tls: { ca: CA } });
  await sendGoodClip(client.socket, { id: 'after-plain', message: 'still here', frames: FRAMES.slice(0, 2) });
  assert.equal((await httpsGet(`${server.url}/healthz`)).status, 200);
  assert.ok(silent.every((socket) => !socket.destroyed), 'the silent sockets are still open: they were not what let the others through');
});

e2e('SIGHUP serves the swapped files to new connections; open sockets stay; a bad pair is refused', async (t, h) => {
  const first = makeLeaf();
  const dir = mkdtempSync(join(tmpdir(), 'loopchat-tls-live-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const live = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  writeFileSync(live.cert, readFileSync(first.cert));
  writeFileSync(live.key, readFileSync(first.key));
  const server = await h.server({ args: tlsArgs(live) });
  assert.equal((await peerCertificate(server.url)).fingerprint, first.fingerprint);
  const old = await h.client(server.url, { name: 'old', tls: { ca: CA } });

  const second = makeLeaf();
  writeFileSync(live.cert, readFileSync(second.cert));
  writeFileSync(live.key, readFileSync(second.key));
  server.signal('SIGHUP');
  await eventually(async () => (await peerCertificate(server.url)).fingerprint === second.fingerprint,
    'the new certificate on new connections');

  assert.equal(old.socket.connected, true, 'the old socket is still connected');
  const watcher = await h.client(server.url, { name: 'new', tls: { ca: CA } });
  const broadcast = once(watcher.socket, 'message');
  const clip = await sendGoodClip(old.socket, { id: 'after-reload', message: 'old socket', frames: FRAMES.slice(0, 2) });
  assert.equal((await broadcast).key, clip.key, 'the old socket still sends and is heard');

  // A renewal half done: the new certificate with the old key. The reload is refused and
  // the certificate served stays the one before.
  writeFileSync(live.cert, readFileSync(makeLeaf().cert));
  server.signal('SIGHUP');
  await eventually(() => /still serving the old certificate/.test(server.output()), 'the refused reload in the log');
  assert.match(server.output(), /cert\.pem|key\.pem/, 'the log names the file');
  assert.equal((await peerCertificate(server.url)).fingerprint, second.fingerprint);
  assert.equal(old.socket.connected, true);
});

e2e('the redirect listener answers 308 to the same path and query on the HTTPS port', async (t, h) => {
  const server = await h.server({ args: [...tlsArgs(makeLeaf()), '--http-redirect-port', '0'] });
  const tlsPort = new URL(server.url).port;
  const line = await eventually(() => server.output().match(/redirecting http:\/\/127\.0\.0\.1:(\d+) to https/), 'the redirect port');
  const redirectPort = Number(line[1]);

  const named = await httpGet(redirectPort, '/live?room=a&x=%20y', `loopchat.test:${redirectPort}`);
  assert.equal(named.status, 308);
  assert.equal(named.headers.location, `https://loopchat.test:${tlsPort}/live?room=a&x=%20y`);

  const bare = await httpGet(redirectPort, '/', '127.0.0.1');
  assert.equal(bare.status, 308);
  assert.equal(bare.headers.location, `https://127.0.0.1:${tlsPort}/`);

  // The Location works: it is the TLS port, serving the page.
  assert.equal((await httpsGet(bare.headers.location)).status, 200);
});

e2e('--tls-self-signed makes a certificate once and reuses it across restarts', async (t, h) => {
  const args = ['--tls-self-signed', '--tls-name', 'loopchat.test', '--tls-name', '10.1.2.3'];
  const first = await h.server({ args });
  const printed = (server) => server.output().match(/self-signed certificate \((made now|kept), ([^)]+)\) SHA-256 fingerprint ([0-9A-F:]{95})/);
  const made = await eventually(() => printed(first), 'the printed fingerprint');
  assert.equal(made[1], 'made now');
  const certFile = made[2];
  assert.ok(certFile.startsWith(first.dataDir), `the certificate is in the data dir: ${certFile}`);
  const selfSigned = readFileSync(certFile);
  const fingerprint = new X509Certificate(selfSigned).fingerprint256;
  assert.equal(made[3], fingerprint, 'the printed fingerprint is the certificate’s');
  assert.equal(statSync(join(first.dataDir, 'self-signed-key.pem')).mode & 0o777, 0o600, 'the key is private');

  const peer = await peerCertificateTrusting(first.url, selfSigned);
  assert.equal(peer.fingerprint, fingerprint, 'it is the one served');
  for (const name of ['DNS:localhost', 'DNS:loopchat.test', 'IP Address:127.0.0.1', 'IP Address:10.1.2.3']) {
    assert.ok(peer.altNames.includes(name), `${name} in ${peer.altNames}`);
  }
  const client = await h.client(first.url, { name: 'lan', tls: { ca: selfSigned } });
  client.close();
  await first.stop();

  const second = await h.server({ args, dataDir: first.dataDir });
  const kept = await eventually(() => printed(second), 'the printed fingerprint after the restart');
  assert.equal(kept[1], 'kept');
  assert.equal(kept[3], fingerprint, 'the same certificate after a restart');
  assert.equal((await peerCertificateTrusting(second.url, selfSigned)).fingerprint, fingerprint);
});

/** Like `peerCertificate`, trusting `ca` (e.g. a self-signed certificate) instead. */
function peerCertificateTrusting(url, ca) {
  const { hostname, port } = new URL(url);
  return new Promise((resolvePeer, reject) => {
    const socket = connectTls({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      const peer = socket.getPeerCertificate();
      socket.end();
      resolvePeer({ fingerprint: peer.fingerprint256, altNames: peer.subjectaltname });
    });
    socket.once('error', reject);
  });
}

// Ten 640×640 frames: a clip the encoder takes long enough over to be caught in flight.
const LARGE_FRAMES = Array(10).fill(readFileSync(new URL('../fixtures/large/plasma-640.jpg', import.meta.url)));

e2e('a stop over TLS still answers every clip in flight', async (t, h) => {
  const server = await h.server({ args: tlsArgs(makeLeaf()) });
  const client = await h.client(server.url, { name: 'last', tls: { ca: CA } });
  const replies = [];
  for (let i = 0; i < 5; i += 1) {
    replies.push(client.socket.timeout(WAIT_MS).emitWithAck('message', { id: `inflight-${i}`, message: `${i}`, frames: LARGE_FRAMES }));
  }
  await untilSomeInFlight(async () => (await httpsGet(`${server.url}/metrics`)).body.toString('utf8'), 5);

  const exit = await server.stop();

  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  const answered = await Promise.all(replies); // rejects if a clip went unanswered
  assert.ok(answered.every((reply) => reply.ok), `every clip in flight is acked: ${JSON.stringify(answered.map((r) => r.error))}`);
});

// ---- refusing to start --------------------------------------------------------------------

e2e('bad certificate files are refused at start, naming the file and why, without a backtrace', async (t, h) => {
  const good = makeLeaf();
  const other = makeLeaf();
  const dir = mkdtempSync(join(tmpdir(), 'loopchat-tls-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const junk = join(dir, 'junk.pem');
  writeFileSync(junk, 'this is not a certificate\n');
  const missing = join(dir, 'missing.pem');
  const cases = [
    { what: 'a missing certificate', cert: missing, key: good.key, named: missing, why: /no such file/ },
    { what: 'a missing key', cert: good.cert, key: missing, named: missing, why: /no such file/ },
    { what: 'a certificate that is not PEM', cert: junk, key: good.key, named: junk, why: /no PEM certificate/ },
    { what: 'a key that is not PEM', cert: good.cert, key: junk, named: junk, why: /no PEM private key/ },
    { what: 'a key of another certificate', cert: good.cert, key: other.key, named: other.key, why: /does not belong/ },
  ];
  for (const { what, cert, key, named, why } of cases) {
    const result = await runToExit(['--bind', '127.0.0.1', '--port', '0', '--data-dir', join(dir, 'data'), '--tls-cert', cert, '--tls-key', key]);
    const line = assertOneLineRefusal(result);
    assert.ok(line.includes(named), `${what}: the line names ${named}: ${line}`);
    assert.match(line, why, what);
    assert.match(line, /--tls-cert/, `${what}: the line says what to check`);
  }
});

e2e('a busy port, an unusable data dir and one in use are one line each, naming the address or the path', async (t, h) => {
  const taken = createServer();
  await new Promise((resolveListen) => taken.listen(0, '127.0.0.1', resolveListen));
  t.after(() => taken.close());
  const { port } = taken.address();
  const dir = mkdtempSync(join(tmpdir(), 'loopchat-busy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const busy = assertOneLineRefusal(await runToExit(['--bind', '127.0.0.1', '--port', String(port), '--data-dir', join(dir, 'data')]));
  assert.equal(busy, `loopchat: cannot listen on 127.0.0.1:${port}: address already in use (another loopchat running? choose another --port)`);

  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  const dataDir = join(file, 'data');
  const unusable = assertOneLineRefusal(await runToExit(['--bind', '127.0.0.1', '--port', '0', '--data-dir', dataDir]));
  assert.equal(unusable, `loopchat: cannot use the data dir ${dataDir}: not a directory (check --data-dir)`);

  // A data dir another server holds: refused before anything is announced.
  const running = await h.server();
  const inUse = assertOneLineRefusal(await runToExit(['--bind', '127.0.0.1', '--port', '0', '--data-dir', running.dataDir]));
  assert.ok(inUse.startsWith(`loopchat: cannot open the store in ${running.dataDir}: `), inUse);
  assert.match(inUse, /another loopchat using this --data-dir\?\)$/);
});
