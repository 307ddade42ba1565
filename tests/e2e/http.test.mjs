// The HTTP side (SPEC §4): health, metrics, unknown routes and unknown clips.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { e2e, metricsText, metricValue, sendGoodClip, loadFrames } from './helpers.mjs';

e2e('GET /healthz answers 200 ok', async (t, h) => {
  const server = await h.server();
  const response = await fetch(`${server.url}/healthz`);
  assert.equal(response.status, 200);
  assert.equal((await response.text()).trim(), 'ok');
});

e2e('unknown routes and unknown clips answer 404', async (t, h) => {
  const server = await h.server();
  for (const path of [
    '/no-such-page',
    '/clips/',
    '/clips/0190a0b0-0000-7000-8000-000000000000.gif', // a well-formed UUIDv7 that was never issued
    '/clips/not-a-key.gif',
    '/clips/../Cargo.toml',
    '/public/../Cargo.toml',
  ]) {
    const response = await fetch(`${server.url}${path}`);
    assert.equal(response.status, 404, `GET ${path}`);
    await response.arrayBuffer();
  }
  // Path traversal, sent raw (fetch() would normalise the dots away).
  for (const path of ['/..%2fCargo.toml', '/%2e%2e/Cargo.toml', '/%2e%2e%2f%2e%2e%2fetc/passwd']) {
    const { status, body } = await rawGet(server.url, path);
    assert.notEqual(status, 200, `GET ${path} must not serve a file outside public/ (got ${status}: ${body.slice(0, 80)})`);
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
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
