// The balancer of SPEC §8: deploy/nginx/loopchat.conf, run by a test's own nginx in front of
// two loopchat nodes. The nodes here are independent single nodes (no Redis): a clip reaches
// only the sockets of the node it was sent to, which makes visible which node a request
// landed on. So these tests hold without cluster mode: sticky sessions over long-polling,
// the per-tab key `?lb=` and its fallback to the client's address, the WebSocket upgrade,
// and bodies as large as a clip gets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  connect, once, sendClip, sendGoodClip, loadFrames, padJpeg, dataUri, metricsText, metricValue,
  startServer, eventually, expectNoEvent,
} from '../e2e/helpers.mjs';
import { NGINX_CONFIG, renderNginxConfig, startNginx } from './services.mjs';

const FRAMES = loadFrames();
/**
 * The sticky keys tried, in order. Which node a key lands on depends on the nodes' addresses
 * (free ports, so it changes from run to run), so a test that needs keys on both nodes tries
 * them until it has seen both: with a fair hash, 64 keys all on one node is 1 in 2^63.
 */
const KEYS = Array.from({ length: 64 }, (_, i) => `tab-${i}`);
/** Keys the long-polling test goes through at least, to check each stays on its node. */
const AT_LEAST_KEYS = 8;
/** Client addresses the keyless test tries (127.0.0.2 …), likewise: 1 in 2^31 on one node. */
const ADDRESSES = Array.from({ length: 32 }, (_, i) => `127.0.0.${i + 2}`);
/**
 * The nodes are independent, each with its own id secret, so one browser token is another
 * user id on each: the id a client is welcomed with says which node it landed on.
 */
const TOKEN = Buffer.alloc(32, 7).toString('base64url');

let nodes = [];
let nginx;
const clients = [];
/** The user id TOKEN has on nodes[0] and nodes[1]. */
let idOnNode = [];

before(async () => {
  nodes = [await startServer(), await startServer()];
  nginx = await startNginx({ nodes: nodes.map((node) => node.url) });
  for (const node of nodes) {
    const direct = await connect(node.url, { name: 'which-node', token: TOKEN }).ready;
    idOnNode.push(direct.welcome.you.id);
    direct.close();
  }
  assert.notEqual(idOnNode[0], idOnNode[1], 'each node has its own id secret');
});
after(async () => {
  for (const client of clients) client.close();
  await nginx?.cleanup();
  for (const node of nodes) await node.cleanup();
});

/** A client through nginx, closed when the file ends. */
async function viaNginx(options) {
  const client = connect(nginx.url, options);
  clients.push(client);
  await client.ready;
  return client;
}

/** The index in `nodes` of the node `client` (connected with TOKEN) landed on. */
function nodeOf(client) {
  const index = idOnNode.indexOf(client.welcome.you.id);
  assert.ok(index >= 0, `${client.welcome.you.name} was connected with TOKEN`);
  return index;
}

async function connections(node) {
  return metricValue(await metricsText(node.url), 'loopchat_connections');
}

/** Lines of the config file that are directives (not comments, not blank). */
const directives = (text) => text.split('\n').map((line) => line.replace(/#.*/, '').trim()).filter(Boolean);

test('the rendered config is deploy/nginx/loopchat.conf with only the listen and server lines changed', async () => {
  const original = await readFile(NGINX_CONFIG, 'utf8');
  const rendered = renderNginxConfig(original, { listen: '127.0.0.1:9999', servers: ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'] });
  const changed = (line) => /^(listen|server\s+[\d.]+:\d+)/.test(line);
  assert.deepEqual(directives(rendered).filter((line) => !changed(line)), directives(original).filter((line) => !changed(line)));
  assert.deepEqual(directives(rendered).filter(changed), ['server 127.0.0.1:1;', 'server 127.0.0.1:2;', 'server 127.0.0.1:3;', 'listen 127.0.0.1:9999;']);
  // The comments an operator reads are kept too.
  assert.equal(rendered.split('\n').filter((line) => line.trim().startsWith('#')).join('\n'),
    original.split('\n').filter((line) => line.trim().startsWith('#')).join('\n'));
  assert.equal(nginx.config, renderNginxConfig(original, { listen: new URL(nginx.url).host, servers: nodes.map((node) => new URL(node.url).host) }),
    'the running nginx uses the rendered file');
});

test('the config keeps sessions sticky, upgrades WebSockets and outlasts a ping cycle', async () => {
  const lines = directives(await readFile(NGINX_CONFIG, 'utf8'));
  assert.ok(lines.includes('hash $loopchat_lb_key consistent;'), 'consistent hashing on the sticky key');
  assert.ok(lines.includes('proxy_http_version 1.1;'));
  assert.ok(lines.includes('proxy_set_header Upgrade $http_upgrade;'));
  assert.ok(lines.includes('proxy_buffering off;'));
  const seconds = (name) => Number(lines.find((line) => line.startsWith(`${name} `))?.match(/^\S+ (\d+)s;$/)?.[1]);
  // Engine.IO's ping interval (25 s) plus its timeout (20 s): a quieter connection is dead anyway.
  assert.ok(seconds('proxy_read_timeout') > 45, `proxy_read_timeout ${seconds('proxy_read_timeout')} s > 45 s`);
  const body = lines.find((line) => line.startsWith('client_max_body_size '))?.match(/^\S+ (\d+)m;$/)?.[1];
  // Above the node's own transport cap (3 MiB of clip + 2 MiB), so the node answers, not nginx.
  assert.ok(Number(body) >= 5, `client_max_body_size ${body}m ≥ 5m`);
});

test('long-polling through nginx: every key keeps its session on one node, and the keys spread over both', async (t) => {
  const before = await Promise.all(nodes.map(connections));
  // For each key a polling tab and a WebSocket tab: on independent nodes the second gets the
  // first's clip only when both landed on the same node. Keys are tried until at least
  // AT_LEAST_KEYS were and both nodes got some.
  const keysOn = [[], []];
  for (const lb of KEYS) {
    if (keysOn[0].length + keysOn[1].length >= AT_LEAST_KEYS && keysOn.every((keys) => keys.length > 0)) break;
    const poller = await viaNginx({ name: `poll-${lb}`, transports: ['polling'], query: { lb }, token: TOKEN });
    const socket = await viaNginx({ name: `ws-${lb}`, transports: ['websocket'], query: { lb }, token: TOKEN });
    assert.equal(poller.socket.io.engine.transport.name, 'polling');
    const arrived = once(socket.socket, 'message');
    // A clip over polling takes a POST beside the GET held open: a session moved to the
    // other node would answer 400 "Session ID unknown".
    const clip = await sendGoodClip(poller.socket, { message: `from ${lb}`, frames: FRAMES.slice(0, 2) });
    assert.equal((await arrived).key, clip.key, `key ${lb}: both tabs are on one node`);
    assert.equal(poller.socket.connected, true);
    assert.equal(nodeOf(socket), nodeOf(poller), `key ${lb}: both tabs are welcomed by one node`);
    keysOn[nodeOf(poller)].push(lb);
  }
  const tried = keysOn[0].length + keysOn[1].length;
  assert.ok(keysOn.every((keys) => keys.length > 0), `the keys spread over both nodes: ${JSON.stringify(keysOn)}`);
  const after = await Promise.all(nodes.map(connections));
  const added = after.map((count, i) => count - before[i]);
  assert.deepEqual(added, keysOn.map((keys) => 2 * keys.length), `every tab is connected, to the node its key's welcome named: ${added}`);
  t.diagnostic(`${tried} keys: ${keysOn.map((keys) => keys.length).join(' and ')} on the two nodes`);
});

test('without a key nginx falls back to the client\'s address: one address, one node', async () => {
  const first = await viaNginx({ name: 'no-key-1', transports: ['polling'] });
  const second = await viaNginx({ name: 'no-key-2', transports: ['polling'] });
  const arrived = once(second.socket, 'message');
  const clip = await sendGoodClip(first.socket, { message: 'no key', frames: [FRAMES[0]] });
  assert.equal((await arrived).key, clip.key, 'both keyless clients are on the node of 127.0.0.1');
});

test('without a key the fallback hashes on the address: other addresses go to the other node too', async (t) => {
  // One address, one node (above) also holds for a fallback that hashes something constant,
  // which would put every keyless client on one node. Keyless clients from other loopback
  // addresses (the WebSocket transport binds `localAddress`) must reach both nodes, each
  // address sticking to its node. Addresses are tried until both nodes were seen.
  const addressesOn = [[], []];
  for (const localAddress of ADDRESSES) {
    // connect() hands its `tls` options to the client as they are; `localAddress` is one
    // that the WebSocket transport passes on to the connection.
    const first = await viaNginx({ name: `from-${localAddress}`, token: TOKEN, tls: { localAddress } });
    const second = await viaNginx({ name: `again-${localAddress}`, token: TOKEN, tls: { localAddress } });
    assert.equal(nodeOf(second), nodeOf(first), `both keyless clients from ${localAddress} are on one node`);
    addressesOn[nodeOf(first)].push(localAddress);
    first.close();
    second.close();
    if (addressesOn.every((addresses) => addresses.length > 0)) break;
  }
  assert.ok(addressesOn.every((addresses) => addresses.length > 0),
    `keyless clients from ${addressesOn.flat().length} addresses all went to one node: the fallback does not hash on the address (${JSON.stringify(addressesOn)})`);
  // nginx saw those addresses, not 127.0.0.1 for all (which would be a constant too). It
  // logs a WebSocket request once it is over, so the clients were closed.
  const logged = (address) => new RegExp(`^${address.replaceAll('.', '\\.')} `, 'm').test(readFileSync(join(nginx.dir, 'access.log'), 'utf8'));
  for (const address of addressesOn.flat()) await eventually(() => logged(address), `nginx to log a request from ${address}`);
  t.diagnostic(`addresses by node: ${JSON.stringify(addressesOn)}`);
});

test('the upgrade from polling to WebSocket passes through nginx', async () => {
  const client = await viaNginx({ name: 'upgrader', transports: ['polling', 'websocket'], query: { lb: KEYS[0] } });
  await eventually(() => client.socket.io.engine.transport.name === 'websocket', 'the upgrade to websocket');
  const peer = await viaNginx({ name: 'peer', transports: ['polling'], query: { lb: KEYS[0] } });
  const arrived = once(peer.socket, 'message');
  const clip = await sendGoodClip(client.socket, { message: 'upgraded', frames: FRAMES });
  assert.equal((await arrived).key, clip.key);
});

test('a clip of 2.4 MiB goes through nginx over polling, and one over 3 MiB is refused by loopchat, not nginx', async () => {
  const lb = KEYS[1];
  const sender = await viaNginx({ name: 'big', transports: ['polling'], query: { lb } });
  const watcher = await viaNginx({ name: 'watcher', transports: ['polling'], query: { lb } });
  // Ten frames just under the 256 KiB limit: about 3.3 MB as base64 in one POST body.
  const big = FRAMES.map((frame) => padJpeg(frame, 250 * 1024));
  const arrived = once(watcher.socket, 'message');
  const clip = await sendGoodClip(sender.socket, { message: 'heavy', frames: big });
  assert.equal((await arrived).key, clip.key);

  const tooBig = await sendClip(sender.socket, { message: 'too heavy', frames: FRAMES.map((f) => dataUri(padJpeg(f, 240 * 1024))) });
  assert.equal(tooBig.reply.error?.code, 'frame_too_large', `reply: ${JSON.stringify(tooBig.reply).slice(0, 300)}`);
  await expectNoEvent(watcher.socket, 'message');
  assert.equal(sender.socket.connected, true, 'the sender stays connected');
  assert.doesNotMatch(nginx.output(), /client intended to send too large body/);
});
