// Limits per client address (SPEC §13) and bans by address (SPEC §10), on one node: the
// connection cap and rate, the clip and report buckets shared by every socket of an address,
// the admin API's failed sign-ins, the client address behind a trusted proxy
// (X-Forwarded-For) and per IPv6 /64, address bans, and /metrics'
// loopchat_address_refusals_total. Every test starts its own server.
//
// Clients choose their source address with socket.io-client's `localAddress` (every address
// of 127.0.0.0/8 is this machine's on Linux; only ::1 exists for IPv6, so the /64 grouping is
// checked behind a trusted proxy). Helpers that connect for themselves (the replay probe)
// are given an address of their own, so that no limit counts them with a test's clients.
//
// Limits are small so that nothing waits for a minute: the connection rate's window (2N a
// minute) is reached with N = 2, and the clip bucket (M/2) with M = 4, whose refill (one
// token every 15 s) is far longer than the few clips each test sends take.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  e2e, connect, once, expectNoEvent, roundTrip, eventually, sendClip, sendGoodClip, loadFrames,
  metricsText, metricValue, replayKeys, clipsStored, fetchGif, WAIT_MS,
} from './helpers.mjs';

const FRAMES = loadFrames();
const ADMIN = 'address-limits-admin-token';
const token = (seed) => Buffer.alloc(32, seed).toString('base64url');
const SOME_USER = 'aaaaaaaaaaaaaaaaaaaa';
/** Every source address a test below uses, none of which may appear in a log line. */
const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];

/** connect() options for a client whose socket comes from `address`. */
const from = (address, options = {}) => ({ ...options, clientOptions: { ...options.clientOptions, localAddress: address } });
/** connect() options for a client that sends `value` as X-Forwarded-For (a string, or an array: one header each). */
const forwardedFor = (value, options = {}) => ({
  ...options,
  clientOptions: { ...options.clientOptions, extraHeaders: { 'x-forwarded-for': value } },
});

let probes = 0;
/** A source address used by nothing else in this file: for a replay probe. */
const probeAddress = () => { probes += 1; return `127.0.9.${probes}`; };
/** The keys a new client from an address of its own is replayed. */
const replay = (url) => replayKeys(url, { localAddress: probeAddress() });

/**
 * Connects a client that is expected to be refused: resolves with the `connect_error`'s
 * message, or 'connected' if it was greeted instead (then it is closed at once).
 */
async function attempt(h, url, options) {
  const client = connect(url, options);
  h.cleanups.push(() => client.close());
  const outcome = await client.ready.then(() => 'connected', (error) => error.message.replace(/^connect_error: /, ''));
  client.close();
  return outcome;
}

/** `loopchat_connections`, the node's open sockets. */
async function connections(url) {
  return metricValue(await metricsText(url), 'loopchat_connections');
}

/** Closes `client` and waits until the server counts `left` open connections. */
async function closeAndWait(url, client, left) {
  client.close();
  await eventually(async () => (await connections(url)) === left, `the server to count ${left} open connections after a close`);
}

/** Every series of loopchat_address_refusals_total (undefined when missing). */
async function refusals(url) {
  const text = await metricsText(url);
  const get = (kind, code) => metricValue(text, 'loopchat_address_refusals_total', { kind, code });
  return {
    too_many_connections: get('connection', 'too_many_connections'),
    banned: get('connection', 'banned'),
    message: get('message', 'rate_limited'),
    report: get('report', 'rate_limited'),
    admin: get('admin', 'too_many_failures'),
  };
}

/** Checks every refusal counter: `expected`'s, and 0 for the rest. */
async function assertRefusals(url, expected) {
  assert.deepEqual(
    await refusals(url),
    { too_many_connections: 0, banned: 0, message: 0, report: 0, admin: 0, ...expected },
    'loopchat_address_refusals_total{kind,code} counts exactly the refusals made',
  );
}

/** No plain address of `addresses` is in the server's output. */
function assertNoAddressLogged(server, addresses = ADDRESSES) {
  const output = server.output();
  for (const address of addresses) assert.ok(!output.includes(address), `${address} appears in the server's output`);
}

/**
 * One HTTP request through node:http, so that it can come from `localAddress` (the global
 * fetch cannot choose it). Resolves with `{ status, headers, text, json }`.
 */
function request(url, { method = 'GET', path, auth, body, localAddress } = {}) {
  const target = new URL(path, url);
  const headers = {};
  if (auth) headers.authorization = `Bearer ${auth}`;
  let data;
  if (body !== undefined) {
    data = JSON.stringify(body);
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(data);
  }
  return new Promise((resolveRequest, reject) => {
    const req = httpRequest({
      host: target.hostname.replace(/^\[|\]$/g, ''), port: target.port, path: `${target.pathname}${target.search}`,
      method, headers, localAddress, agent: false,
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolveRequest({ status: response.statusCode, headers: response.headers, text, json });
      });
      response.on('error', reject);
    });
    req.setTimeout(WAIT_MS, () => req.destroy(new Error(`no answer to ${method} ${path} within ${WAIT_MS} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Every file under `dir`, recursively, as `[path, bytes]`. */
async function filesUnder(dir) {
  const found = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...await filesUnder(path));
    else if (entry.isFile()) found.push([path, await readFile(path)]);
  }
  return found;
}

/** No file under `dir` holds any of `addresses` as text. */
async function assertNoAddressStored(dir, addresses) {
  const files = await filesUnder(dir);
  assert.ok(files.length > 0, `the data dir ${dir} holds files`);
  for (const [path, bytes] of files) {
    for (const address of addresses) assert.equal(bytes.indexOf(Buffer.from(address)), -1, `${address} is in ${path}`);
  }
}

/** Emits `report` for `key` on `client`, resolves with the ack's reply. */
const report = (client, key) => client.socket.timeout(WAIT_MS).emitWithAck('report', { key });

/** Checks a clip refused `rate_limited`: the ack's error and the messageerror, with the id. */
function assertRateLimited({ reply, event, eventName }, id) {
  assert.notEqual(reply.ok, true, `ack reply: ${JSON.stringify(reply)}`);
  assert.equal(reply.error?.code, 'rate_limited', `ack reply: ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.error.message, 'string');
  assert.ok(reply.error.message.length > 0, 'the refusal is explained in words');
  assert.equal(eventName, 'messageerror', `got ${eventName} ${JSON.stringify(event)}`);
  assert.deepEqual(event, { id, code: 'rate_limited', message: reply.error.message });
}

// ---- connections ---------------------------------------------------------------------------

e2e('connections: N open per address, the next handshake is refused too_many_connections; another address is unaffected; a close frees a place', async (t, h) => {
  const server = await h.server({ args: ['--max-connections-per-address', '3'] });
  await assertRefusals(server.url, {}); // every series is there from the start, at 0
  const mine = [];
  for (let i = 0; i < 3; i += 1) mine.push(await h.client(server.url, from('127.0.0.2', { name: `mine-${i}`, token: token(i + 1) })));
  assert.equal(await connections(server.url), 3);

  assert.equal(await attempt(h, server.url, from('127.0.0.2', { name: 'fourth', token: token(9) })), 'too_many_connections', 'the fourth from 127.0.0.2');
  assert.equal(await connections(server.url), 3, 'the refused handshake left no connection behind');
  for (const client of mine) assert.equal(client.socket.connected, true, 'the open connections stay');
  await assertRefusals(server.url, { too_many_connections: 1 });

  // Another source address has its own three.
  const theirs = [];
  for (let i = 0; i < 3; i += 1) theirs.push(await h.client(server.url, from('127.0.0.3', { name: `theirs-${i}` })));
  assert.equal(await connections(server.url), 6);

  // A close frees its place at once; then the address is full again.
  await closeAndWait(server.url, mine[0], 5);
  const again = await h.client(server.url, from('127.0.0.2', { name: 'again', token: token(1) }));
  assert.equal(await attempt(h, server.url, from('127.0.0.2', { name: 'over' })), 'too_many_connections', 'full again');
  await assertRefusals(server.url, { too_many_connections: 2 });

  // The server still serves everyone: a clip from the other address reaches 127.0.0.2's sockets.
  const arrivals = [again, mine[1], mine[2]].map((client) => once(client.socket, 'message'));
  const clip = await sendGoodClip(theirs[0].socket, { message: 'still open', frames: [FRAMES[0]] });
  for (const arrival of arrivals) assert.equal((await arrival).key, clip.key);
  assertNoAddressLogged(server);
});

e2e('connections: at most 2N new in a minute, even with none open (N = 2: the fifth is refused)', async (t, h) => {
  const server = await h.server({ args: ['--max-connections-per-address', '2'] });
  for (let i = 0; i < 4; i += 1) {
    const client = await h.client(server.url, from('127.0.0.2', { name: `short-${i}`, token: token(i + 1) }));
    await closeAndWait(server.url, client, 0);
  }
  assert.equal(await connections(server.url), 0, 'none is open');
  assert.equal(await attempt(h, server.url, from('127.0.0.2', { name: 'fifth', token: token(5) })), 'too_many_connections', 'the fifth new connection within the minute');
  await assertRefusals(server.url, { too_many_connections: 1 });

  // Another address is not slowed down by it.
  const other = await h.client(server.url, from('127.0.0.3', { name: 'other' }));
  await sendGoodClip(other.socket, { message: 'from elsewhere', frames: [FRAMES[1]] });
  assert.equal(await connections(server.url), 1);
  assertNoAddressLogged(server);
});

// ---- clips and reports ---------------------------------------------------------------------

e2e('clips: one bucket of M/2 for every socket of an address (M = 4): the third is rate_limited, not stored, not broadcast; another address still sends', async (t, h) => {
  const server = await h.server({ args: ['--clips-per-address-per-minute', '4'] });
  const first = await h.client(server.url, from('127.0.0.2', { name: 'first', token: token(1) }));
  const second = await h.client(server.url, from('127.0.0.2', { name: 'second', token: token(2) }));
  const observer = await h.client(server.url, from('127.0.0.3', { name: 'observer', token: token(3) }));
  assert.notEqual(first.welcome.you.id, second.welcome.you.id, 'two users');
  const replayBefore = await replay(server.url);
  const storedBefore = await clipsStored(server.url);

  const sent = [];
  sent.push(await sendGoodClip(first.socket, { id: 'one', message: 'one', frames: [FRAMES[0]] }));
  sent.push(await sendGoodClip(second.socket, { id: 'two', message: 'two', frames: [FRAMES[1]] }));
  await eventually(() => observer.received.message.length === 2, 'the two clips at the observer');

  // The second socket sent one clip only: its own bucket (5) is far from empty.
  assertRateLimited(await sendClip(second.socket, { id: 'three', message: 'three', frames: [FRAMES[2]] }), 'three');
  assertRateLimited(await sendClip(first.socket, { id: 'four', message: 'four', frames: [FRAMES[3]] }), 'four');
  await expectNoEvent(observer.socket, 'message');
  assert.deepEqual(observer.received.message.map((clip) => clip.key), sent.map((clip) => clip.key), 'only the two accepted clips were broadcast');
  assert.equal(await clipsStored(server.url), storedBefore + 2, 'the refused clips were not stored');
  assert.deepEqual(await replay(server.url), [...replayBefore, ...sent.map((clip) => clip.key)]);
  assert.equal(first.socket.connected && second.socket.connected, true, 'the refused senders stay connected');

  // Every attempt takes a token, a payload that does not even parse too.
  const sloppy = await h.client(server.url, from('127.0.0.4', { name: 'sloppy' }));
  for (let i = 0; i < 2; i += 1) {
    const { reply } = await sendClip(sloppy.socket, 'not an object');
    assert.equal(reply.error?.code, 'invalid_payload', `attempt ${i + 1}: ${JSON.stringify(reply)}`);
  }
  assertRateLimited(await sendClip(sloppy.socket, { id: 'valid', message: 'valid but late', frames: [FRAMES[4]] }), 'valid');
  await assertRefusals(server.url, { message: 3 });

  // Another address sends as before, and every socket of the limited one receives it.
  const arrivals = [first, second].map((client) => once(client.socket, 'message'));
  const good = await sendGoodClip(observer.socket, { message: 'from elsewhere', frames: FRAMES });
  for (const arrival of arrivals) assert.equal((await arrival).key, good.key);
  assert.deepEqual(await replay(server.url), [...replayBefore, ...sent.map((clip) => clip.key), good.key]);
  assert.equal((await fetchGif(server.url, good.clip)).response.status, 200);
  assert.equal(await clipsStored(server.url), storedBefore + 3);
  await assertRefusals(server.url, { message: 3 });
  assertNoAddressLogged(server);
});

e2e('reports: a bucket of their own per address, of the same size as the clips\' (M = 4: two)', async (t, h) => {
  const server = await h.server({ args: ['--clips-per-address-per-minute', '4', '--admin-token', ADMIN] });
  const author = await h.client(server.url, from('127.0.0.3', { name: 'author', token: token(1) }));
  const reported = await sendGoodClip(author.socket, { message: 'report me', frames: [FRAMES[0]] });
  const readers = [];
  for (let i = 0; i < 3; i += 1) readers.push(await h.client(server.url, from('127.0.0.2', { name: `reader-${i}`, token: token(10 + i) })));

  assert.deepEqual(await report(readers[0], reported.key), { ok: true });
  assert.deepEqual(await report(readers[1], reported.key), { ok: true });
  for (const reader of [readers[2], readers[0]]) {
    const reply = await report(reader, reported.key);
    assert.notEqual(reply.ok, true, JSON.stringify(reply));
    assert.equal(reply.error?.code, 'rate_limited', JSON.stringify(reply));
  }
  const counted = await request(server.url, { path: '/admin/reports', auth: ADMIN });
  assert.deepEqual(counted.json.map(({ key, reports }) => ({ key, reports })), [{ key: reported.key, reports: 2 }], 'the refused report was not counted');
  await assertRefusals(server.url, { report: 2 });

  // The clip bucket is another: 127.0.0.2 still has its two clips, and then no more.
  const fromReaders = [];
  fromReaders.push(await sendGoodClip(readers[0].socket, { message: 'after the reports', frames: [FRAMES[1]] }));
  fromReaders.push(await sendGoodClip(readers[1].socket, { message: 'after the reports too', frames: [FRAMES[2]] }));
  assertRateLimited(await sendClip(readers[2].socket, { id: 'late', message: 'late', frames: [FRAMES[3]] }), 'late');

  // And the other way round: an address whose clips ran out still reports.
  const busy = await h.client(server.url, from('127.0.0.4', { name: 'busy', token: token(20) }));
  await sendGoodClip(busy.socket, { message: 'busy 1', frames: [FRAMES[4]] });
  await sendGoodClip(busy.socket, { message: 'busy 2', frames: [FRAMES[5]] });
  assertRateLimited(await sendClip(busy.socket, { id: 'busy-3', message: 'busy 3', frames: [FRAMES[6]] }), 'busy-3');
  assert.deepEqual(await report(busy, reported.key), { ok: true });
  const after = await request(server.url, { path: '/admin/reports', auth: ADMIN });
  assert.deepEqual(after.json.map(({ key, reports }) => ({ key, reports })), [{ key: reported.key, reports: 3 }]);
  await assertRefusals(server.url, { report: 2, message: 2 });
  assert.equal((await replay(server.url)).length, 5, 'the five accepted clips, and only those, are replayed');
  assert.deepEqual((await replay(server.url)).slice(1, 3), fromReaders.map((clip) => clip.key));
  assertNoAddressLogged(server);
});

e2e('0 turns the connection and clip limits off; the admin failure limit stays on', async (t, h) => {
  const server = await h.server({ args: ['--max-connections-per-address', '0', '--clips-per-address-per-minute', '0', '--admin-token', ADMIN] });
  const clients = [];
  for (let i = 0; i < 6; i += 1) clients.push(await h.client(server.url, from('127.0.0.2', { name: `c-${i}`, token: token(i + 1) })));
  // Three clips and three reports from one address: a bucket of "0/2, at least 1" would hold one.
  const clips = [];
  for (let i = 0; i < 3; i += 1) clips.push(await sendGoodClip(clients[i].socket, { message: `c ${i}`, frames: [FRAMES[i]] }));
  for (let i = 0; i < 3; i += 1) assert.deepEqual(await report(clients[3 + i], clips[0].key), { ok: true });
  await assertRefusals(server.url, {});

  for (let i = 0; i < 10; i += 1) {
    assert.equal((await request(server.url, { path: '/admin/bans', auth: 'wrong', localAddress: '127.0.0.2' })).status, 401, `failure ${i + 1}`);
  }
  assert.equal((await request(server.url, { path: '/admin/bans', auth: ADMIN, localAddress: '127.0.0.2' })).status, 429);
  await assertRefusals(server.url, { admin: 1 });
});

// ---- the admin API -------------------------------------------------------------------------

e2e('admin: after 10 failed sign-ins from an address, every /admin/ API request from it is 429 with Retry-After, the right token too; other addresses are unaffected', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN] });
  const failures = [
    ['GET', '/admin/bans', false], ['GET', '/admin/bans', 'wrong'], ['GET', '/admin/clips', `${ADMIN}x`],
    ['GET', '/admin/reports', false], ['DELETE', `/admin/bans/${SOME_USER}`, 'wrong'], ['GET', '/admin/bans', ADMIN.slice(0, -1)],
    ['GET', '/admin/clips', 'wrong'], ['GET', '/admin/reports', 'wrong'], ['GET', '/admin/bans', false], ['GET', '/admin/bans', 'wrong'],
  ];
  for (const [i, [method, path, auth]] of failures.entries()) {
    const { status } = await request(server.url, { method, path, auth, localAddress: '127.0.0.2' });
    assert.equal(status, 401, `failure ${i + 1}: ${method} ${path}`);
  }
  await assertRefusals(server.url, {});

  const limited = await request(server.url, { path: '/admin/bans', auth: ADMIN, localAddress: '127.0.0.2' });
  assert.equal(limited.status, 429, 'the 11th request, with the right token');
  const retryAfter = limited.headers['retry-after'];
  assert.match(String(retryAfter), /^\d+$/, `Retry-After in whole seconds: ${retryAfter}`);
  assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter} within the minute`);
  assert.match(limited.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(typeof limited.json?.error, 'string', `a JSON error: ${limited.text}`);
  assert.ok(limited.json.error.length > 0);
  const post = await request(server.url, { method: 'POST', path: '/admin/bans', auth: ADMIN, body: { user: SOME_USER, minutes: 5 }, localAddress: '127.0.0.2' });
  assert.equal(post.status, 429, 'a POST with the right token too');
  const wrong = await request(server.url, { path: '/admin/clips', auth: 'wrong', localAddress: '127.0.0.2' });
  assert.equal(wrong.status, 429, 'and a wrong one');
  await assertRefusals(server.url, { admin: 3 });

  // The moderator's page is not limited.
  const page = await request(server.url, { path: '/admin', localAddress: '127.0.0.2' });
  assert.equal(page.status, 200, 'GET /admin');

  // Other addresses: 401 and 200 as before; the refused POST made no ban.
  assert.equal((await request(server.url, { path: '/admin/bans', auth: 'wrong', localAddress: '127.0.0.3' })).status, 401);
  const listed = await request(server.url, { path: '/admin/bans', auth: ADMIN, localAddress: '127.0.0.3' });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.json, [], 'the 429 POST made no ban');
  assert.equal((await request(server.url, { path: '/admin/clips', auth: ADMIN })).status, 200, 'from 127.0.0.1');
  await assertRefusals(server.url, { admin: 3 });
  assert.doesNotMatch(server.output(), new RegExp(ADMIN), 'the admin token is in no log line');
  assertNoAddressLogged(server);
});

// ---- X-Forwarded-For -----------------------------------------------------------------------

e2e('X-Forwarded-For from a trusted proxy: each forwarded client has its own cap; the right-most untrusted entry counts', async (t, h) => {
  const server = await h.server({ args: ['--trusted-proxy', '127.0.0.1/32', '--max-connections-per-address', '2'] });
  const count = { refused: 0 };
  const refusedAs = async (options, what) => {
    assert.equal(await attempt(h, server.url, options), 'too_many_connections', what);
    count.refused += 1;
  };
  for (let i = 0; i < 2; i += 1) await h.client(server.url, forwardedFor('203.0.113.7', { name: `seven-${i}` }));
  await refusedAs(forwardedFor('203.0.113.7', { name: 'seven-2' }), 'a third behind the proxy as 203.0.113.7');
  for (let i = 0; i < 2; i += 1) await h.client(server.url, forwardedFor('203.0.113.8', { name: `eight-${i}` }));
  // The proxy's own connections (no header) count as 127.0.0.1.
  for (let i = 0; i < 2; i += 1) await h.client(server.url, { name: `proxy-${i}` });
  await refusedAs({ name: 'proxy-2' }, 'a third from the proxy itself');

  // A chain: only 127.0.0.1 is trusted, so the right-most entry is the client, whatever the left says.
  await h.client(server.url, forwardedFor('198.51.100.1, 203.0.113.9', { name: 'chain-1' }));
  await h.client(server.url, forwardedFor('198.51.100.2, 203.0.113.9', { name: 'chain-2' }));
  await refusedAs(forwardedFor('203.0.113.9', { name: 'chain-3' }), '203.0.113.9 has two already');
  await h.client(server.url, forwardedFor('198.51.100.1', { name: 'left-part' }));

  // A peer that is no trusted proxy counts as itself, whatever it forwards.
  await h.client(server.url, from('127.0.0.2', forwardedFor('203.0.113.7', { name: 'untrusted' })));
  await assertRefusals(server.url, { too_many_connections: count.refused });
  assertNoAddressLogged(server, [...ADDRESSES, '203.0.113.7', '203.0.113.8', '203.0.113.9', '198.51.100.1', '198.51.100.2']);
});

e2e('X-Forwarded-For through two trusted proxies: the entry left of the trusted one counts', async (t, h) => {
  const server = await h.server({ args: ['--trusted-proxy', '127.0.0.1/32', '--trusted-proxy', '203.0.113.9/32', '--max-connections-per-address', '2'] });
  for (let i = 0; i < 2; i += 1) await h.client(server.url, forwardedFor('198.51.100.1, 203.0.113.9', { name: `a-${i}` }));
  assert.equal(await attempt(h, server.url, forwardedFor('198.51.100.1', { name: 'a-direct' })), 'too_many_connections', 'counted as 198.51.100.1');
  for (let i = 0; i < 2; i += 1) await h.client(server.url, forwardedFor('198.51.100.2, 203.0.113.9', { name: `b-${i}` }));
  await h.client(server.url, forwardedFor('203.0.113.10, 203.0.113.9', { name: 'c' }));
  await assertRefusals(server.url, { too_many_connections: 1 });
});

e2e('X-Forwarded-For, the walk in detail: TRUSTED_PROXY with a bare address, all trusted, an entry that is no address, IPv4-mapped, several headers', async (t, h) => {
  const server = await h.server({ args: ['--max-connections-per-address', '2'], env: { TRUSTED_PROXY: '127.0.0.1/32,203.0.113.9' } });
  let refused = 0;
  const refusedAs = async (options, what) => {
    assert.equal(await attempt(h, server.url, options), 'too_many_connections', what);
    refused += 1;
  };

  // Every entry trusted: the left-most is the client (203.0.113.9, not the peer 127.0.0.1).
  for (let i = 0; i < 2; i += 1) await h.client(server.url, forwardedFor('203.0.113.9', { name: `trusted-${i}` }));
  await refusedAs(forwardedFor('203.0.113.9, 127.0.0.1', { name: 'trusted-2' }), 'all trusted: the left-most, 203.0.113.9');

  // An entry that is no address stops the walk at the last trusted hop: here 203.0.113.9
  // (full), not the 198.51.100.7 left of it.
  await refusedAs(forwardedFor('198.51.100.7, not-an-address, 203.0.113.9', { name: 'garbage-in-chain' }), 'the hop right of the bad entry');
  // Alone, the last trusted hop is the peer: 127.0.0.1.
  await h.client(server.url, { name: 'peer-1' });
  await h.client(server.url, forwardedFor('not-an-address', { name: 'peer-2' }));
  await refusedAs({ name: 'peer-3' }, '127.0.0.1 has two: the bad header counted as the peer');

  // IPv4-mapped IPv6 is the IPv4 address.
  for (let i = 0; i < 2; i += 1) await h.client(server.url, forwardedFor('::ffff:198.51.100.20', { name: `mapped-${i}` }));
  await refusedAs(forwardedFor('198.51.100.20', { name: 'mapped-2' }), '::ffff:198.51.100.20 is 198.51.100.20');

  // Several X-Forwarded-For headers are one list, in order.
  await h.client(server.url, forwardedFor(['198.51.100.30', '203.0.113.9'], { name: 'two-headers' }));
  await h.client(server.url, forwardedFor('198.51.100.30', { name: 'one-header' }));
  await refusedAs(forwardedFor('198.51.100.30', { name: 'one-too-many' }), 'two headers joined: 198.51.100.30');
  await assertRefusals(server.url, { too_many_connections: refused });
});

e2e('X-Forwarded-For without --trusted-proxy is ignored (spoofed values share the peer\'s cap) and said once in the log, naming no address', async (t, h) => {
  const server = await h.server({ args: ['--max-connections-per-address', '2'] });
  const spoofed = ['203.0.113.7', '203.0.113.8', '203.0.113.10', '198.51.100.99'];
  await h.client(server.url, forwardedFor(spoofed[0], { name: 'spoof-1' }));
  await h.client(server.url, forwardedFor(spoofed[1], { name: 'spoof-2' }));
  assert.equal(await attempt(h, server.url, forwardedFor(spoofed[2], { name: 'spoof-3' })), 'too_many_connections', 'all count as 127.0.0.1');
  assert.equal(await attempt(h, server.url, { name: 'plain' }), 'too_many_connections', '127.0.0.1 without a header too');
  // Another peer, spoofing the same, has its own cap.
  await h.client(server.url, from('127.0.0.2', forwardedFor(spoofed[3], { name: 'other-peer' })));
  await assertRefusals(server.url, { too_many_connections: 2 });

  const warnings = () => server.output().split('\n').filter((line) => line.includes('X-Forwarded-For') && line.includes('--trusted-proxy'));
  await eventually(() => warnings().length >= 1, 'a log line naming X-Forwarded-For and --trusted-proxy');
  assert.equal(warnings().length, 1, `exactly one such line, once per process:\n${warnings().join('\n')}`);
  assert.match(warnings()[0], /WARN/, `at warn level: ${warnings()[0]}`);
  for (const address of [...spoofed, '127.0.0.1', '127.0.0.2']) assert.ok(!warnings()[0].includes(address), `the line names ${address}: ${warnings()[0]}`);
  assertNoAddressLogged(server, [...ADDRESSES, ...spoofed]);
});

// ---- IPv6 ----------------------------------------------------------------------------------

e2e('IPv6: the cap holds for a client connected over ::1', async (t, h) => {
  const server = await h.server({ bind: '::1', args: ['--max-connections-per-address', '2'] });
  assert.match(server.url, /^http:\/\/\[::1\]:\d+$/);
  for (let i = 0; i < 2; i += 1) await h.client(server.url, from('::1', { name: `six-${i}` }));
  assert.equal(await attempt(h, server.url, from('::1', { name: 'six-2' })), 'too_many_connections');
  await assertRefusals(server.url, { too_many_connections: 1 });
});

e2e('IPv6 counts per /64 (behind a trusted proxy on ::1): two addresses of one /64 share a cap, another /64 does not', async (t, h) => {
  const server = await h.server({ bind: '::1', args: ['--trusted-proxy', '::1/128', '--max-connections-per-address', '2'] });
  await h.client(server.url, forwardedFor('2001:db8:1:2::1', { name: 'a' }));
  await h.client(server.url, forwardedFor('2001:db8:1:2::ffff', { name: 'b' }));
  assert.equal(await attempt(h, server.url, forwardedFor('2001:db8:1:2:ffff:ffff:ffff:ffff', { name: 'c' })), 'too_many_connections', 'the same /64');
  for (let i = 0; i < 2; i += 1) await h.client(server.url, forwardedFor('2001:db8:1:3::1', { name: `next-${i}` }));
  assert.equal(await attempt(h, server.url, forwardedFor('2001:DB8:1:3:0:0:0:2', { name: 'next-2' })), 'too_many_connections', '2001:db8:1:3::/64, however written');
  await h.client(server.url, forwardedFor('2001:db8:1:4::1', { name: 'another' }));
  await assertRefusals(server.url, { too_many_connections: 2 });
  assertNoAddressLogged(server, ['2001:db8', '2001:DB8']);
});

e2e('IPv4 through a dual-stack listener (::ffff:a.b.c.d) counts per IPv4 address, not per /64', async (t, h) => {
  const server = await h.server({ bind: '::', args: ['--max-connections-per-address', '2'] });
  const port = new URL(server.url).port;
  const v4 = `http://127.0.0.1:${port}`;
  const v6 = `http://[::1]:${port}`;
  for (let i = 0; i < 2; i += 1) await h.client(v4, from('127.0.0.2', { name: `two-${i}` }));
  assert.equal(await attempt(h, v4, from('127.0.0.2', { name: 'two-2' })), 'too_many_connections');
  // ::ffff:127.0.0.3 is in the same /64 as ::ffff:127.0.0.2; as IPv4 it is another address.
  await h.client(v4, from('127.0.0.3', { name: 'three' }));
  await h.client(v6, from('::1', { name: 'six' }));
  await assertRefusals(server.url.replace('[::]', '127.0.0.1'), { too_many_connections: 1 });
});

// ---- bans by address -----------------------------------------------------------------------

e2e('a ban with address: true closes every connection from the user\'s addresses, refuses new ones banned, shows no address; DELETE ends it', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN] });
  const { url } = server;
  const troll = await h.client(url, from('127.0.0.2', { name: 'troll', token: token(1) }));
  const trollTab = await h.client(url, from('127.0.0.4', { name: 'troll', token: token(1) }));
  const housemate = await h.client(url, from('127.0.0.2', { name: 'housemate', token: token(2) }));
  const bystander = await h.client(url, from('127.0.0.3', { name: 'bystander', token: token(3) }));
  const quiet = await h.client(url, from('127.0.0.5', { name: 'quiet', token: token(4) }));
  const user = troll.welcome.you.id;
  assert.equal(trollTab.welcome.you.id, user, 'one user in two tabs');
  const spam = await sendGoodClip(troll.socket, { message: 'spam', frames: [FRAMES[0]] });
  const disconnects = [];
  for (const [name, client] of Object.entries({ troll, trollTab, housemate, bystander, quiet })) {
    client.socket.on('disconnect', (reason) => disconnects.push(`${name}: ${reason}`));
  }

  // Nothing known to ban: address false. A ban without `address`: false, and nothing closed.
  const unknown = await request(url, { method: 'POST', path: '/admin/bans', auth: ADMIN, body: { user: SOME_USER, minutes: 5, address: true } });
  assert.equal(unknown.status, 201, unknown.text);
  assert.equal(unknown.json.address, false, `no address known for a user never seen: ${unknown.text}`);
  const plain = await request(url, { method: 'POST', path: '/admin/bans', auth: ADMIN, body: { user: quiet.welcome.you.id, minutes: 5 } });
  assert.equal(plain.status, 201, plain.text);
  assert.equal(plain.json.address, false, `a ban without "address": ${plain.text}`);
  await roundTrip(quiet.socket);
  assert.deepEqual(disconnects, [], 'a ban without address closes nothing');

  const closed = [troll, trollTab, housemate].map((client) => once(client.socket, 'disconnect'));
  const asked = Date.now();
  const ban = await request(url, { method: 'POST', path: '/admin/bans', auth: ADMIN, body: { user, minutes: 30, reason: 'flood', address: true } });
  assert.equal(ban.status, 201, ban.text);
  assert.deepEqual(Object.keys(ban.json).sort(), ['address', 'purged', 'reason', 'until', 'user'], ban.text);
  assert.equal(ban.json.user, user);
  assert.equal(ban.json.reason, 'flood');
  assert.equal(ban.json.purged, 0);
  assert.equal(ban.json.address, true);
  assert.ok(ban.json.until >= asked + 30 * 60_000, `until ${ban.json.until}`);
  for (const address of ADDRESSES) assert.ok(!ban.text.includes(address), `the answer names ${address}`);

  // Both of the troll's addresses are closed: the troll's sockets, and another user's from one of them.
  for (const [i, disconnected] of closed.entries()) assert.equal(await disconnected, 'io server disconnect', `socket ${i}`);
  await roundTrip(bystander.socket);
  await roundTrip(quiet.socket);
  assert.deepEqual(disconnects.sort(), ['housemate: io server disconnect', 'troll: io server disconnect', 'trollTab: io server disconnect']);
  assert.equal(bystander.socket.connected && quiet.socket.connected, true, 'other addresses stay connected');

  // New connections from the banned addresses are refused, whatever their identity.
  assert.equal(await attempt(h, url, from('127.0.0.2', { name: 'fresh', token: token(5) })), 'banned', 'a fresh token from 127.0.0.2');
  assert.equal(await attempt(h, url, from('127.0.0.2', { name: 'anonymous' })), 'banned', 'no token from 127.0.0.2');
  assert.equal(await attempt(h, url, from('127.0.0.4', { name: 'fresh', token: token(6) })), 'banned', 'a fresh token from 127.0.0.4');
  assert.equal(await attempt(h, url, from('127.0.0.2', { name: 'troll', token: token(1) })), 'banned', 'the troll again');
  await assertRefusals(url, { banned: 4 });

  // 127.0.0.3 is not banned: a newcomer from it connects and is heard.
  const newcomer = await h.client(url, from('127.0.0.3', { name: 'newcomer', token: token(7) }));
  const heard = once(bystander.socket, 'message');
  const hello = await sendGoodClip(newcomer.socket, { message: 'hello', frames: [FRAMES[1]] });
  assert.equal((await heard).key, hello.key);

  const listed = await request(url, { path: '/admin/bans', auth: ADMIN });
  assert.equal(listed.status, 200);
  for (const entry of listed.json) {
    assert.ok(Object.keys(entry).every((field) => ['user', 'until', 'reason', 'address'].includes(field)), `a ban lists no other field: ${JSON.stringify(entry)}`);
    assert.equal(typeof entry.address, 'boolean', JSON.stringify(entry));
  }
  const byUser = Object.fromEntries(listed.json.map((entry) => [entry.user, entry]));
  assert.deepEqual(byUser[user], { user, until: ban.json.until, reason: 'flood', address: true });
  assert.equal(byUser[SOME_USER]?.address, false);
  assert.equal(byUser[quiet.welcome.you.id]?.address, false);
  for (const address of ADDRESSES) assert.ok(!listed.text.includes(address), `GET /admin/bans names ${address}`);
  assertNoAddressLogged(server);
  await assertNoAddressStored(server.dataDir, ADDRESSES);

  // Lifted: 127.0.0.2 and 127.0.0.4 connect again, and the troll is heard again.
  assert.equal((await request(url, { method: 'DELETE', path: `/admin/bans/${user}`, auth: ADMIN })).status, 204);
  const back = await h.client(url, from('127.0.0.2', { name: 'troll', token: token(1) }));
  await h.client(url, from('127.0.0.4', { name: 'fresh', token: token(6) }));
  await h.client(url, from('127.0.0.2', { name: 'anonymous' }));
  const heardAgain = once(bystander.socket, 'message');
  const sorry = await sendGoodClip(back.socket, { message: 'sorry', frames: [FRAMES[2]] });
  assert.equal((await heardAgain).key, sorry.key);
  assert.ok(!(await request(url, { path: '/admin/bans', auth: ADMIN })).json.some((entry) => entry.user === user), 'no longer listed');
  assert.ok((await replay(url)).includes(spam.key), 'without purge the clip stays');
  await assertRefusals(url, { banned: 4 });
  assertNoAddressLogged(server);
});

e2e('a ban with address: true covers the address the user last sent a clip from, outlives a restart, and no file holds the address', async (t, h) => {
  const first = await h.server({ args: ['--admin-token', ADMIN] });
  const spammer = await h.client(first.url, from('127.0.0.6', { name: 'spammer', token: token(8) }));
  const user = spammer.welcome.you.id;
  await sendGoodClip(spammer.socket, { message: 'hit and run', frames: [FRAMES[0]] });
  await closeAndWait(first.url, spammer, 0);

  const ban = await request(first.url, { method: 'POST', path: '/admin/bans', auth: ADMIN, body: { user, minutes: 60, address: true } });
  assert.equal(ban.status, 201, ban.text);
  assert.equal(ban.json.address, true, `the address of the last clip is known: ${ban.text}`);
  assert.equal(await attempt(h, first.url, from('127.0.0.6', { name: 'fresh', token: token(9) })), 'banned');
  const neighbour = await h.client(first.url, from('127.0.0.7', { name: 'neighbour' }));
  await assertRefusals(first.url, { banned: 1 });
  assertNoAddressLogged(first);

  neighbour.close();
  await first.stop();
  await assertNoAddressStored(first.dataDir, ADDRESSES);

  const second = await h.server({ dataDir: first.dataDir, args: ['--admin-token', ADMIN] });
  assert.equal(await attempt(h, second.url, from('127.0.0.6', { name: 'after-restart', token: token(10) })), 'banned', 'the address ban outlives a restart');
  await h.client(second.url, from('127.0.0.7', { name: 'neighbour' }));
  const listed = await request(second.url, { path: '/admin/bans', auth: ADMIN });
  assert.deepEqual(listed.json.map(({ user: who, address }) => ({ user: who, address })), [{ user, address: true }]);
  assert.equal((await request(second.url, { method: 'DELETE', path: `/admin/bans/${user}`, auth: ADMIN })).status, 204);
  await h.client(second.url, from('127.0.0.6', { name: 'forgiven', token: token(8) }));
  await assertRefusals(second.url, { banned: 1 });
  assertNoAddressLogged(second);
  await second.stop();
  await assertNoAddressStored(first.dataDir, ADDRESSES);
});
