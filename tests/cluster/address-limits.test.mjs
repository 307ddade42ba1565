// Limits per client address across nodes (SPEC §13 with §8) and bans by address (§10): the
// connection cap and the clip bucket are shared by the nodes through Redis; a node killed
// with kill -9 stops counting; while Redis is down every node still limits its own sockets,
// and once it is back the limits are shared again; a ban by address made through one node
// closes and refuses the address on the other; and no plain address reaches Redis (a key, a
// value, or the append-only file) or a node's output.
//
// Clients connect to each node's own URL with socket.io-client's `localAddress`. The first
// tests share one cluster, whose counters outlive a test (the connection rate's window is a
// minute): each of them takes source addresses nobody else uses (`fresh()`).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  connect, once, roundTrip, eventually, sendClip, sendGoodClip, loadFrames, metricsText, metricValue,
  replayKeys, WAIT_MS,
} from '../e2e/helpers.mjs';
import { clipKeysInRedis, clusterTest, sharedCluster } from './services.mjs';

const FRAMES = loadFrames();
const ADMIN = 'cluster-address-limits-admin-token';
const token = (seed) => Buffer.alloc(32, seed).toString('base64url');
/** How long an answer is waited for while Redis is down (as tests/cluster/faults.test.mjs). */
const ANSWER_WAIT_MS = 30_000;
/** How long recovery is waited for once Redis is back. */
const RECOVERY_WAIT_MS = 60_000;
/** N = 2 and M = 4: the third connection of an address, and its third clip, are refused. */
const LIMITS = ['--max-connections-per-address', '2', '--clips-per-address-per-minute', '4'];

const shared = sharedCluster({ nginx: false, args: ['--admin-token', ADMIN, ...LIMITS] });
const test = shared.test;

/** Every source address this file used, none of which may appear in Redis or a log. */
const USED = new Set();
let taken = 0;
/** A source address of 127.0.0.0/8 that no other test of this file uses. */
function fresh() {
  taken += 1;
  const address = `127.0.${10 + Math.floor(taken / 200)}.${10 + (taken % 200)}`;
  USED.add(address);
  return address;
}
/** connect() options for a client whose socket comes from `address`. */
const from = (address, options = {}) => {
  USED.add(address);
  return { ...options, clientOptions: { ...options.clientOptions, localAddress: address } };
};

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

async function metric(url, name, labels) {
  return metricValue(await metricsText(url), name, labels);
}

/** loopchat_address_refusals_total of every kind, summed over `nodes`. */
async function refusals(nodes) {
  const total = { too_many_connections: 0, banned: 0, message: 0, report: 0, admin: 0 };
  const series = {
    too_many_connections: ['connection', 'too_many_connections'], banned: ['connection', 'banned'],
    message: ['message', 'rate_limited'], report: ['report', 'rate_limited'], admin: ['admin', 'too_many_failures'],
  };
  for (const node of nodes) {
    const text = await metricsText(node.url);
    for (const [name, [kind, code]] of Object.entries(series)) {
      const value = metricValue(text, 'loopchat_address_refusals_total', { kind, code });
      assert.equal(typeof value, 'number', `loopchat_address_refusals_total{kind="${kind}",code="${code}"} on ${node.url}`);
      total[name] += value;
    }
  }
  return total;
}

/** Checks that the refusals over `nodes` grew by `expected` (0 for every other kind) since `before`. */
async function assertRefusalsSince(nodes, before, expected) {
  const now = await refusals(nodes);
  const grown = Object.fromEntries(Object.entries(now).map(([name, value]) => [name, value - before[name]]));
  assert.deepEqual(grown, { too_many_connections: 0, banned: 0, message: 0, report: 0, admin: 0, ...expected }, 'loopchat_address_refusals_total grew by exactly the refusals made');
}

/** Closes `client` (connected to `node`) and waits until that node counts one connection less. */
async function closeOn(node, client) {
  const before = await metric(node.url, 'loopchat_connections');
  client.close();
  await eventually(async () => (await metric(node.url, 'loopchat_connections')) === before - 1, `${node.url} to count the close`);
}

/** Checks a clip refused `rate_limited`: the ack's error and the messageerror, with the id. */
function assertRateLimited({ reply, event, eventName }, id) {
  assert.notEqual(reply.ok, true, `ack reply: ${JSON.stringify(reply)}`);
  assert.equal(reply.error?.code, 'rate_limited', `ack reply: ${JSON.stringify(reply)}`);
  assert.equal(eventName, 'messageerror', `got ${eventName} ${JSON.stringify(event)}`);
  assert.deepEqual(event, { id, code: 'rate_limited', message: reply.error.message });
}

/**
 * A Lua script that reads every key of the instance with its whole value (any type) and
 * returns, as JSON, each key in which one of ARGV occurs (in the name or the value).
 */
const FIND_IN_REDIS = `
local found = {}
local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    local parts = { key }
    local kind = redis.call('TYPE', key).ok
    local add = function(list) for _, v in ipairs(list) do table.insert(parts, tostring(v)) end end
    if kind == 'string' then table.insert(parts, redis.call('GET', key))
    elseif kind == 'hash' then add(redis.call('HGETALL', key))
    elseif kind == 'list' then add(redis.call('LRANGE', key, 0, -1))
    elseif kind == 'set' then add(redis.call('SMEMBERS', key))
    elseif kind == 'zset' then add(redis.call('ZRANGE', key, 0, -1))
    elseif kind == 'stream' then
      for _, entry in ipairs(redis.call('XRANGE', key, '-', '+')) do add(entry[2]) end
    end
    for _, part in ipairs(parts) do
      for _, needle in ipairs(ARGV) do
        if string.find(part, needle, 1, true) then table.insert(found, key .. ' holds ' .. needle) end
      end
    end
  end
until cursor == '0'
return cjson.encode(found)
`;

/** The keys of `redis` whose name or value holds one of `needles`. */
async function findInRedis(redis, needles) {
  const out = await redis.cli('EVAL', FIND_IN_REDIS, '0', ...needles);
  const found = JSON.parse(out);
  return Array.isArray(found) ? found : []; // cjson encodes an empty table as {}
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

/**
 * No plain address of `addresses` in Redis (any key or value now, or anything ever written:
 * the append-only file logs every write), nor in any node's output. `canary`, a text the test
 * stored (a clip's message), must be found by the same searches, so that they can fail.
 */
async function assertNoAddressAnywhere(cluster, addresses, canary) {
  const { redis, nodes } = cluster;
  assert.ok((await findInRedis(redis, [canary])).length > 0, `the search of Redis finds the canary "${canary}"`);
  assert.deepEqual(await findInRedis(redis, addresses), [], 'no key or value in Redis holds a plain address');
  const files = await filesUnder(redis.dir);
  assert.ok(files.some(([, bytes]) => bytes.includes(Buffer.from(canary))), `Redis's files hold the canary "${canary}"`);
  for (const [path, bytes] of files) {
    for (const address of addresses) assert.equal(bytes.indexOf(Buffer.from(address)), -1, `${address} is in ${path}`);
  }
  for (const node of nodes) {
    const output = node.output();
    for (const address of addresses) assert.ok(!output.includes(address), `${address} appears in the output of ${node.url}`);
  }
}

/** POST/GET/DELETE on the moderation API of `url`. */
async function admin(url, method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: text ? JSON.parse(text) : undefined };
}

// ---- one cluster, shared -------------------------------------------------------------------

test('the connection cap and rate hold across nodes: one socket on each, the third is refused on either; a close frees its place at once, on its node and the other; 2N new a minute across both', async (t, h, { nodes }) => {
  const [a, b] = nodes;
  const before = await refusals(nodes);
  const address = fresh();
  const onA = await h.client(a.url, from(address, { name: 'on-a' }));
  const onB = await h.client(b.url, from(address, { name: 'on-b' }));
  assert.equal(await attempt(h, a.url, from(address, { name: 'third-a' })), 'too_many_connections', 'the third, on node A');
  assert.equal(await attempt(h, b.url, from(address, { name: 'third-b' })), 'too_many_connections', 'the third, on node B');
  assert.equal(onA.socket.connected && onB.socket.connected, true, 'the open ones stay');
  // Another address is not affected, on either node.
  const other = fresh();
  await h.client(a.url, from(other, { name: 'other-a' }));
  await h.client(b.url, from(other, { name: 'other-b' }));

  // A close frees its place at once (SPEC §13): on its own node, and for the other node.
  await closeOn(a, onA);
  assert.equal(await attempt(h, a.url, from(address, { name: 'again-same-node' })), 'connected', 'right after a close on node A, node A takes a new connection from the address');
  await closeOn(b, onB);
  assert.equal(await attempt(h, a.url, from(address, { name: 'again-other-node' })), 'connected', 'right after a close on node B, node A takes a new connection from the address');
  // Four new connections within the minute (2N): the next is refused on either node, though one place is open.
  assert.equal(await attempt(h, b.url, from(address, { name: 'over-b' })), 'too_many_connections', 'the fifth new one within the minute');
  await assertRefusalsSince(nodes, before, { too_many_connections: 3 });
});

test('the clip bucket is shared across nodes: two clips on two nodes, the third on either is rate_limited, never stored nor broadcast', async (t, h, { redis, nodes }) => {
  const [a, b] = nodes;
  const before = await refusals(nodes);
  const since = Date.now();
  const address = fresh();
  const watching = fresh();
  const elsewhere = fresh();
  const onA = await h.client(a.url, from(address, { name: 'sender-a', token: token(1) }));
  const onB = await h.client(b.url, from(address, { name: 'sender-b', token: token(2) }));
  const observers = [await h.client(a.url, from(watching, { name: 'observer-a' })), await h.client(b.url, from(watching, { name: 'observer-b' }))];

  const accepted = [];
  accepted.push(await sendGoodClip(onA.socket, { id: 'one', message: 'one', frames: [FRAMES[0]] }));
  accepted.push(await sendGoodClip(onB.socket, { id: 'two', message: 'two', frames: [FRAMES[1]] }));
  assertRateLimited(await sendClip(onB.socket, { id: 'three', message: 'three', frames: [FRAMES[2]] }), 'three');
  assertRateLimited(await sendClip(onA.socket, { id: 'four', message: 'four', frames: [FRAMES[3]] }), 'four');

  // Later good clips from another address on both nodes: each reaches the observers after
  // anything its node broadcast before, so once both are there a refused clip would be too.
  const senders = [await h.client(a.url, from(elsewhere, { name: 'good-a' })), await h.client(b.url, from(elsewhere, { name: 'good-b' }))];
  for (const [i, sender] of senders.entries()) accepted.push(await sendGoodClip(sender.socket, { id: `good-${i}`, message: `good ${i}`, frames: [FRAMES[4 + i]] }));
  for (const observer of observers) {
    await eventually(() => accepted.every((clip) => observer.received.message.some((m) => m.key === clip.key)), 'every accepted clip at the observer');
    assert.deepEqual(observer.received.message.map((clip) => clip.id).sort(), ['good-0', 'good-1', 'one', 'two'], 'the refused clips were not broadcast');
  }
  assert.deepEqual([...await clipKeysInRedis(redis, since)].sort(), accepted.map((clip) => clip.key).sort(), 'only the accepted clips are in Redis');
  for (const node of nodes) {
    const replay = await replayKeys(node.url, { localAddress: fresh() });
    assert.deepEqual(replay.slice(-4).sort(), accepted.map((clip) => clip.key).sort(), `${node.url} replays the accepted clips and no other`);
  }
  await assertRefusalsSince(nodes, before, { message: 2 });
});

test('a ban by address made through node A closes the address\'s sockets on node B and refuses it on both; DELETE through B ends it', async (t, h, cluster) => {
  const { nodes } = cluster;
  const [a, b] = nodes;
  const before = await refusals(nodes);
  const [clipAddress, connectedAddress, bystanderAddress] = [fresh(), fresh(), fresh()];
  // The troll sent a clip from one address on node B and left; it is now connected from
  // another, on node B, where a housemate with another identity is connected on node A.
  const hitAndRun = await h.client(b.url, from(clipAddress, { name: 'troll', token: token(11) }));
  const user = hitAndRun.welcome.you.id;
  await sendGoodClip(hitAndRun.socket, { message: 'spam across nodes', frames: [FRAMES[0]] });
  await closeOn(b, hitAndRun);
  const troll = await h.client(b.url, from(connectedAddress, { name: 'troll', token: token(11) }));
  const housemate = await h.client(a.url, from(connectedAddress, { name: 'housemate', token: token(12) }));
  const bystanders = [await h.client(a.url, from(bystanderAddress, { name: 'bystander-a' })), await h.client(b.url, from(bystanderAddress, { name: 'bystander-b' }))];
  const disconnects = [];
  for (const [name, client] of Object.entries({ troll, housemate, bystanderA: bystanders[0], bystanderB: bystanders[1] })) {
    client.socket.on('disconnect', (reason) => disconnects.push(`${name}: ${reason}`));
  }

  const closed = [troll, housemate].map((client) => once(client.socket, 'disconnect'));
  const ban = await admin(a.url, 'POST', '/admin/bans', { user, minutes: 30, address: true });
  assert.equal(ban.status, 201, ban.text);
  assert.equal(ban.json.address, true, ban.text);
  for (const address of USED) assert.ok(!ban.text.includes(address), `the answer names ${address}`);
  assert.equal(await closed[0], 'io server disconnect', 'the troll\'s socket on node B is closed');
  assert.equal(await closed[1], 'io server disconnect', 'the housemate\'s socket on node A is closed');
  for (const bystander of bystanders) await roundTrip(bystander.socket);
  assert.deepEqual(disconnects.sort(), ['housemate: io server disconnect', 'troll: io server disconnect']);

  // Both addresses are refused on both nodes (node B closed the troll: it knows the ban).
  for (const node of [a, b]) {
    for (const address of [clipAddress, connectedAddress]) {
      assert.equal(await attempt(h, node.url, from(address, { name: 'fresh', token: token(13) })), 'banned', `${address === clipAddress ? 'the clip\'s' : 'the connected'} address on ${node.url}`);
    }
  }
  await assertRefusalsSince(nodes, before, { banned: 4 });
  const listed = await admin(b.url, 'GET', '/admin/bans');
  const { reason, ...entry } = listed.json.find((ban) => ban.user === user) ?? {};
  assert.deepEqual(entry, { user, until: ban.json.until, address: true }, listed.text);
  assert.equal(reason ?? null, null, 'no reason was given');
  for (const address of USED) assert.ok(!listed.text.includes(address), `GET /admin/bans names ${address}`);

  // Lifted through node B: node B lets them in at once, node A once it hears of it.
  assert.equal((await admin(b.url, 'DELETE', `/admin/bans/${user}`)).status, 204);
  await h.client(b.url, from(clipAddress, { name: 'troll', token: token(11) }));
  await eventually(async () => (await attempt(h, a.url, from(connectedAddress, { name: 'housemate', token: token(12) }))) === 'connected', 'node A to let the address in again');
  await assertNoAddressAnywhere(cluster, [...USED], 'spam across nodes');
});

test('no plain address of any test above is in Redis, its files, or a node\'s output', async (t, h, cluster) => {
  const sender = await h.client(cluster.nodes[0].url, from(fresh(), { name: 'canary' }));
  await sendGoodClip(sender.socket, { message: 'canary of the last scan', frames: [FRAMES[0]] });
  await assertNoAddressAnywhere(cluster, [...USED], 'canary of the last scan');
});

// ---- a cluster of its own ------------------------------------------------------------------

clusterTest('a node killed with kill -9 stops counting: its connections are freed for the other node', null, async (t, h) => {
  const cluster = await h.cluster({ nginx: false, args: LIMITS });
  const [a, b] = cluster.nodes;
  const address = '127.0.0.2';
  await h.client(a.url, from(address, { name: 'on-a' }));
  const onB = await h.client(b.url, from(address, { name: 'on-b' }));
  assert.equal(await attempt(h, b.url, from(address, { name: 'third' })), 'too_many_connections', 'shared before the kill');

  await a.kill9();
  await eventually(async () => (await metric(b.url, 'loopchat_cluster_nodes')) === 1, 'node B to count node A out');
  let replacement;
  await eventually(async () => {
    const client = connect(b.url, from(address, { name: 'replacement' }));
    h.cleanups.push(() => client.close());
    try {
      replacement = await client.ready;
      return true;
    } catch (error) {
      client.close();
      assert.match(error.message, /too_many_connections/);
      return false;
    }
  }, 'a connection from the address on node B, where node A\'s no longer counts', 15_000, 250);
  assert.equal(replacement.socket.connected && onB.socket.connected, true);
  assert.equal(await attempt(h, b.url, from(address, { name: 'over' })), 'too_many_connections', 'node B\'s own two still count');
  const refusedOnB = await metric(b.url, 'loopchat_address_refusals_total', { kind: 'connection', code: 'too_many_connections' });
  assert.ok(refusedOnB >= 2, `node B counted its refusals: ${refusedOnB}`);
  const sender = await h.client(b.url, from('127.0.0.3', { name: 'canary' }));
  await sendGoodClip(sender.socket, { message: 'after the kill', frames: [FRAMES[0]] });
  await assertNoAddressAnywhere(cluster, ['127.0.0.2', '127.0.0.3'], 'after the kill');
});

clusterTest('Redis down: each node still limits its own sockets and clips, never unlimited; Redis back: the limits are shared again', null, async (t, h) => {
  const cluster = await h.cluster({ nginx: false, args: LIMITS });
  const { redis, nodes: [a, b] } = cluster;
  await redis.stop();
  for (const node of [a, b]) {
    await eventually(async () => (await metric(node.url, 'loopchat_redis_up')) === 0, `loopchat_redis_up 0 on ${node.url}`, ANSWER_WAIT_MS);
  }

  const address = '127.0.0.2';
  const senders = [];
  for (const node of [a, b]) {
    const own = [];
    for (let i = 0; i < 2; i += 1) own.push(await h.client(node.url, from(address, { name: `outage-${i}`, token: token(20 + i) })));
    assert.equal(await attempt(h, node.url, from(address, { name: 'outage-third' })), 'too_many_connections', `the third on ${node.url} while Redis is down`);
    senders.push(own);
  }
  // Three clips at once from node A's two sockets: the bucket of two lets two through (which
  // the missing store then refuses, unavailable), and the third is rate_limited.
  const [first, second] = senders[0];
  const replies = await Promise.all([first, second, first].map((client, i) =>
    client.socket.timeout(ANSWER_WAIT_MS).emitWithAck('message', { id: `outage-${i}`, message: `during the outage ${i}`, frames: [FRAMES[i]] })));
  assert.deepEqual(replies.map((reply) => reply.error?.code ?? 'ok').sort(), ['rate_limited', 'unavailable', 'unavailable'], JSON.stringify(replies));
  for (const node of [a, b]) {
    assert.equal(await metric(node.url, 'loopchat_address_refusals_total', { kind: 'connection', code: 'too_many_connections' }), 1, `one connection refused on ${node.url}`);
  }
  assert.equal(await metric(a.url, 'loopchat_address_refusals_total', { kind: 'message', code: 'rate_limited' }), 1);

  await redis.start();
  for (const node of [a, b]) {
    await eventually(async () => (await fetch(`${node.url}/healthz`)).status === 200, `/healthz 200 on ${node.url}`, RECOVERY_WAIT_MS);
    await eventually(async () => (await metric(node.url, 'loopchat_redis_up')) === 1, `loopchat_redis_up 1 on ${node.url}`, RECOVERY_WAIT_MS);
  }
  // Shared again: a new address with one socket on each node gets no third on either. Each
  // try uses an address of its own, so that one made while a node still counted alone does
  // not weigh on the next.
  let tries = 0;
  await eventually(async () => {
    tries += 1;
    const probe = `127.0.1.${tries}`;
    const opened = [];
    try {
      opened.push(await h.client(a.url, from(probe, { name: 'back-a' })));
      opened.push(await h.client(b.url, from(probe, { name: 'back-b' })));
      return await attempt(h, a.url, from(probe, { name: 'back-third' })) === 'too_many_connections';
    } finally {
      for (const client of opened) client.close();
    }
  }, 'the connection cap shared by both nodes again', RECOVERY_WAIT_MS, 250);
  t.diagnostic(`shared again after ${tries} tr${tries === 1 ? 'y' : 'ies'}`);
  const canary = await h.client(b.url, from('127.0.0.3', { name: 'canary' }));
  await sendGoodClip(canary.socket, { message: 'after the outage', frames: [FRAMES[0]] });
  const addresses = ['127.0.0.2', '127.0.0.3', ...Array.from({ length: tries }, (_, i) => `127.0.1.${i + 1}`)];
  // 127.0.1.1 is a prefix of 127.0.1.10 and so on: the search for it covers those too.
  await assertNoAddressAnywhere(cluster, addresses, 'after the outage');
});
