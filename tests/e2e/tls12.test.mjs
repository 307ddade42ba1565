// SPEC §11: the TLS port speaks TLS 1.2 as well as 1.3. tls.test.mjs connects with Node's
// defaults, which negotiate 1.3, so 1.2 was never shown to work: here clients that offer at
// most TLS 1.2 (older browsers and libraries) connect, and the protocol they negotiated is
// read off their connection.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { after } from 'node:test';
import { e2e, loadFrames, sendGoodClip } from './helpers.mjs';

const FRAMES = loadFrames();

// One self-signed certificate for 127.0.0.1, made with the openssl CLI, that the clients
// here trust and nothing else does.
const PKI = mkdtempSync(join(tmpdir(), 'loopchat-tls12-'));
after(() => rmSync(PKI, { recursive: true, force: true }));
execFileSync('openssl', [
  'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
  '-keyout', join(PKI, 'key.pem'), '-out', join(PKI, 'cert.pem'), '-days', '2',
  '-subj', '/CN=loopchat tls12 test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  '-addext', 'basicConstraints=critical,CA:TRUE',
], { stdio: ['ignore', 'ignore', 'pipe'] });
const CA = readFileSync(join(PKI, 'cert.pem'));
const TLS_ARGS = ['--tls-cert', join(PKI, 'cert.pem'), '--tls-key', join(PKI, 'key.pem')];

/**
 * Opens a TLS connection to `url` with `options` (e.g. `{ maxVersion }`), asks for `path`
 * over it with HTTP/1.1, and resolves with the protocol and cipher negotiated, whether
 * the certificate was verified, and the response's status line and body.
 */
function requestOverTls(url, path, options) {
  const { hostname, port } = new URL(url);
  return new Promise((resolveRequest, reject) => {
    const socket = connectTls({ host: hostname, port: Number(port), ca: CA, ...options }, () => {
      const negotiated = { protocol: socket.getProtocol(), cipher: socket.getCipher().name, authorized: socket.authorized };
      const chunks = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolveRequest({ ...negotiated, status: text.split('\r\n')[0], body: text.slice(text.indexOf('\r\n\r\n') + 4) });
      });
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
    });
    socket.once('error', reject);
  });
}

/** An https.Agent that offers at most TLS 1.2 and notes the protocol of every connection it makes. */
class Tls12Agent extends Agent {
  constructor() {
    super({ ca: CA, maxVersion: 'TLSv1.2', keepAlive: false });
    this.negotiated = [];
  }

  createConnection(options, callback) {
    const socket = super.createConnection(options, callback);
    socket.once('secureConnect', () => this.negotiated.push(socket.getProtocol()));
    return socket;
  }
}

e2e('a client that offers at most TLS 1.2 gets TLS 1.2, a verified certificate and the same answers', async (t, h) => {
  const server = await h.server({ args: TLS_ARGS });
  assert.match(server.url, /^https:/);

  const tls12 = await requestOverTls(server.url, '/healthz', { maxVersion: 'TLSv1.2' });
  t.diagnostic(`TLS 1.2 client: ${tls12.protocol}, ${tls12.cipher}`);
  assert.equal(tls12.protocol, 'TLSv1.2', 'the negotiated protocol');
  assert.equal(tls12.authorized, true, 'the certificate verified against the test\'s own root');
  assert.match(tls12.cipher, /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/, 'a forward-secret AEAD suite');
  assert.equal(tls12.status, 'HTTP/1.1 200 OK');
  assert.equal(tls12.body.trim(), 'ok');

  // The same server with Node's defaults: TLS 1.3, so the 1.2 above is the client's doing.
  const tls13 = await requestOverTls(server.url, '/healthz', {});
  assert.equal(tls13.protocol, 'TLSv1.3');
  assert.equal(tls13.status, 'HTTP/1.1 200 OK');
});

e2e('Socket.IO over TLS 1.2: WebSocket and long-polling clients connect and a clip goes through', async (t, h) => {
  const server = await h.server({ args: TLS_ARGS });
  const agent = new Tls12Agent();
  t.after(() => agent.destroy());
  const polling = await h.client(server.url, { name: 'poll-1.2', transports: ['polling'], tls: { agent } });
  const websocket = await h.client(server.url, { name: 'ws-1.2', transports: ['websocket'], tls: { agent } });
  const arrived = new Promise((resolve) => polling.socket.once('message', resolve));
  const clip = await sendGoodClip(websocket.socket, { message: 'over TLS 1.2', frames: FRAMES.slice(0, 2) });
  assert.equal((await arrived).key, clip.key, 'the clip reached the other client');
  t.diagnostic(`connections through the TLS 1.2 agent: ${agent.negotiated.length}`);
  assert.ok(agent.negotiated.length >= 2, `both clients connected through the agent: ${agent.negotiated}`);
  assert.deepEqual([...new Set(agent.negotiated)], ['TLSv1.2'], 'every connection negotiated TLS 1.2');
});
