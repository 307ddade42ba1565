// The HTTP side (SPEC §4): health, metrics, unknown routes and unknown clips.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { e2e, metricsText, metricValue, sendGoodClip, loadFrames } from './helpers.mjs';

e2e('GET /healthz answers 200 ok', async (t, h) => {
  const server = await h.server();
  const response = await fetch(`${server.url}/healthz`);
  assert.equal(response.status, 200);
  assert.equal((await response.text()).trim(), 'ok');
});

e2e('unknown routes, unknown clips, odd keys and path traversal answer 404', async (t, h) => {
  const server = await h.server();
  const client = await h.client(server.url, { name: 'alice' });
  const clip = await sendGoodClip(client.socket, { message: 'the one real clip', frames: loadFrames() });
  const key = clip.key;
  const ok = await fetch(`${server.url}/clips/${key}.gif`);
  assert.equal(ok.status, 200, 'the real clip is served');
  await ok.arrayBuffer();

  // Sent exactly as written: fetch() would normalise dots and some escapes away.
  const paths = [
    '/no-such-page',
    '/clips/',
    '/clips',
    '/clips/0190a0b0-0000-7000-8000-000000000000.gif', // a well-formed UUIDv7 never issued
    '/clips/not-a-key.gif',
    // Other spellings of the real key, and the key with something around it.
    `/clips/${key}`,
    `/clips/${key}.GIF`,
    `/clips/${key}.gif.gif`,
    `/clips/${key}.gif/`,
    `/clips/${key.toUpperCase()}.gif`,
    `/clips/${key.replaceAll('-', '')}.gif`,
    `/clips/{${key}}.gif`,
    `/clips/urn:uuid:${key}.gif`,
    `/clips/${key}%00.gif`,
    `/clips/%20${key}.gif`,
    `/clips/${key}.gif%2f..%2f..%2fCargo.toml`,
    // Traversal out of the clip route and out of public/.
    '/clips/../Cargo.toml',
    '/clips/..%2fCargo.toml',
    '/clips/%2e%2e%2fCargo.toml',
    '/public/../Cargo.toml',
    '/../Cargo.toml',
    '/..%2fCargo.toml',
    '/%2e%2e/Cargo.toml',
    '/%2e%2e%2f%2e%2e%2fetc/passwd',
    '/js/../../Cargo.toml',
    '/js/..%2f..%2fsrc/main.rs',
    '/js/..%5c..%5cCargo.toml',
    '/..\\Cargo.toml',
    '//etc/passwd',
    '/./Cargo.toml',
    '/templates/chat.html',
    '/src/main.rs',
    '/style.css%00.html',
  ];
  for (const path of paths) {
    const { status, body } = await rawGet(server.url, path);
    assert.equal(status, 404, `GET ${path} answered ${status}: ${body.slice(0, 80)}`);
    assert.ok(!body.startsWith('GIF8'), `GET ${path} must not serve a GIF`);
  }
});

e2e('no CORS: responses never grant another origin access', async (t, h) => {
  const server = await h.server();
  const origin = 'https://elsewhere.example';
  for (const path of ['/', '/healthz', '/style.css', '/socket.io/?EIO=4&transport=polling']) {
    const response = await fetch(`${server.url}${path}`, { headers: { origin } });
    await response.arrayBuffer();
    assert.equal(response.headers.get('access-control-allow-origin'), null, `GET ${path}`);
    assert.equal(response.headers.get('access-control-allow-credentials'), null, `GET ${path}`);
  }
  const preflight = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST' },
  });
  await preflight.arrayBuffer();
  assert.equal(preflight.headers.get('access-control-allow-origin'), null, 'OPTIONS preflight');
});

e2e('request limits: too many or too large headers answer 431, a declared huge body 413; the server goes on', async (t, h) => {
  const server = await h.server();
  const manyHeaders = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`x-filler-${i}`, 'x']));
  assert.equal((await rawRequest(server.url, { path: '/healthz', headers: manyHeaders })).status, 431, '150 headers');
  const hugeHeader = { 'x-filler': 'x'.repeat(1024 * 1024) };
  assert.equal((await rawRequest(server.url, { path: '/healthz', headers: hugeHeader })).status, 431, 'a 1 MiB header');
  // Only the head is sent: the server must answer from the declared length alone.
  for (const path of ['/', '/socket.io/?EIO=4&transport=polling']) {
    const head = `POST ${path} HTTP/1.1\r\nHost: loopchat\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`;
    assert.equal(await statusOfRaw(server.url, head), 413, `POST ${path} declaring 64 MiB`);
  }
  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200, 'still serving');
  await health.arrayBuffer();
});

e2e('every response carries X-Content-Type-Options: nosniff, errors and Socket.IO answers too', async (t, h) => {
  const server = await h.server();
  const client = await h.client(server.url, { name: 'alice' });
  const clip = await sendGoodClip(client.socket, { message: 'sniff me not', frames: loadFrames() });
  const answers = [
    ['GET', '/', 200],
    ['GET', `/clips/${clip.key}.gif`, 200],
    ['GET', '/healthz', 200],
    ['GET', '/metrics', 200],
    ['GET', '/style.css', 200],
    ['GET', '/no-such-page', 404],
    // The admin API is off without --admin-token: its 404 comes from another router.
    ['GET', '/admin/reports', 404],
    // Socket.IO's own answers: a long-poll handshake, and a poll of an unknown session.
    ['GET', '/socket.io/?EIO=4&transport=polling', 200],
    ['GET', '/socket.io/?EIO=4&transport=polling&sid=nosuchsession', 400],
  ];
  for (const [method, path, status] of answers) {
    const response = await rawRequest(server.url, { path, method });
    assert.equal(response.status, status, `${method} ${path}`);
    assert.equal(response.headers['x-content-type-options'], 'nosniff', `${method} ${path} answered ${response.status}`);
  }
  // The body limit answers before anything else reads the request.
  const head = `POST / HTTP/1.1\r\nHost: loopchat\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`;
  const refused = await headOfRaw(server.url, head);
  assert.match(refused, /^HTTP\/1\.1 413/);
  assert.match(refused, /^x-content-type-options: nosniff\r$/im, refused);

  const admin = await h.server({ args: ['--admin-token', 'http-suite-admin-token-long-enough'] });
  for (const [path, status] of [['/admin/reports', 401], ['/admin/no-such-route', 401]]) {
    const response = await rawRequest(admin.url, { path });
    assert.equal(response.status, status, path);
    assert.equal(response.headers['x-content-type-options'], 'nosniff', `${path} answered ${response.status}`);
  }
});

e2e('GET /metrics is Prometheus text with the clip counters', async (t, h) => {
  const server = await h.server();
  const client = await h.client(server.url, { name: 'alice' });
  await sendGoodClip(client.socket, { message: 'count me', frames: loadFrames() });
  const refused = await client.socket.timeout(10_000).emitWithAck('message', { message: 'x', frames: [] });
  assert.equal(refused.error.code, 'bad_frame_count');

  const response = await fetch(`${server.url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^(text\/plain|application\/openmetrics-text)/);
  const text = await metricsText(server.url);
  assert.equal(metricValue(text, 'loopchat_clips_stored'), 1);
  assert.equal(metricValue(text, 'loopchat_clips_accepted_total'), 1);
  assert.equal(metricValue(text, 'loopchat_clips_rejected_total', { code: 'bad_frame_count' }), 1);
  assert.match(text, /^# TYPE loopchat_clips_stored gauge$/m);
  // Prometheus text names a counter's TYPE with _total, OpenMetrics without: both are fine.
  assert.match(text, /^# TYPE loopchat_clips_accepted(_total)? counter$/m);
  assert.match(text, /^# TYPE loopchat_clips_rejected(_total)? counter$/m);
});

/** A GET whose path is sent exactly as written. */
function rawGet(base, path) {
  return rawRequest(base, { path });
}

/** A request sent exactly as written; resolves with the status and body. */
function rawRequest(base, { path, method = 'GET', headers = {} }) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes `text` on a fresh TCP connection and resolves with the head of the answer. */
function headOfRaw(base, text) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connectTcp(Number(port), hostname, () => socket.write(text));
    let answer = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(text.slice(0, 60))}`)));
    socket.on('data', (chunk) => {
      answer += chunk;
      const end = answer.indexOf('\r\n\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(answer.slice(0, end + 2));
      }
    });
    socket.on('error', reject);
  });
}

/** Writes `text` on a fresh TCP connection and resolves with the status of the answer. */
async function statusOfRaw(base, text) {
  return Number((await headOfRaw(base, text)).match(/^HTTP\/1\.1 (\d{3})/)[1]);
}
