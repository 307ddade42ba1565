// The live room across nodes (SPEC §8 with §3): participants, the relay, a late joiner's
// frames from streamers on the other node, and `live:left`, on two nodes and through nginx.
// Viewers use WebSocket only: live frames are volatile, and a long-polling viewer between
// two polls would drop them by design.
//
// Fails until cluster mode lands (issue 11): the nodes are started with --redis-url.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../e2e/helpers.mjs';
import { clusterTest, sharedCluster } from './services.mjs';

const FRAME = readFileSync(new URL('../fixtures/clip-synth/f-1.jpg', import.meta.url));
const OTHER_FRAME = readFileSync(new URL('../fixtures/clip-synth/f-2.jpg', import.meta.url));
// The server relays at most one frame per sender every 900 ms.
const FRAME_GAP_MS = 1000;
const shared = sharedCluster({});
const test = shared.test;

/** A client that records every event (the e2e `connect`), with its connection id. */
async function participant(h, url, name) {
  const client = await h.client(url, { name, query: { lb: `${name}-${Math.random()}` } });
  client.id = client.welcome.you.conn;
  client.user = client.welcome.you.id;
  return client;
}

async function join(client) {
  const reply = await client.socket.timeout(5000).emitWithAck('live:join');
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return reply;
}

/**
 * Waits until the room is empty as seen from `node`: the participants of the tests before
 * have disconnected, and their departure has reached every node.
 */
async function untilRoomEmpty(h, node) {
  const probe = await participant(h, node.url, 'probe');
  await eventually(async () => {
    const reply = await join(probe);
    await probe.socket.timeout(5000).emitWithAck('live:leave');
    return reply.participants.length === 0;
  }, 'an empty live room');
  probe.close();
}

const seen = (client, name) => client.events.filter(({ event }) => event === name);
const framesFrom = (client, id) => seen(client, 'live:frame').filter(({ args }) => args[0].from === id);
const joinedIds = (client) => seen(client, 'live:joined').map(({ args }) => args[0].id);
const leftIds = (client) => seen(client, 'live:left').map(({ args }) => args[0].id);

test('frames from a streamer on one node reach viewers on both nodes and through nginx, byte-identical, never the streamer', async (t, h, { nodes: [a, b], url }) => {
  const one = await participant(h, a.url, 'one');
  const two = await participant(h, b.url, 'two');
  const viewers = [await participant(h, a.url, 'viewer-a'), await participant(h, b.url, 'viewer-b'), await participant(h, url, 'viewer-lb')];

  await join(one);
  const twoJoined = await join(two);
  assert.deepEqual(twoJoined.participants.map((p) => ({ id: p.id, user: p.user, name: p.name })), [{ id: one.id, user: one.user, name: 'one' }],
    'a join on node B lists the participant on node A');
  await eventually(() => joinedIds(one).includes(two.id), 'live:joined for B\'s participant at A');
  for (const viewer of viewers) await join(viewer);
  await eventually(() => viewers.every((viewer) => joinedIds(one).includes(viewer.id) && joinedIds(two).includes(viewer.id)), 'live:joined of every viewer at both streamers');

  // One streamer at a time: two frames reaching a viewer in the same instant may keep only the
  // later (volatile delivery).
  const started = Date.now();
  one.socket.emit('live:frame', FRAME);
  await eventually(() => [...viewers, two].every((c) => framesFrom(c, one.id).length === 1), 'one\'s first frame everywhere');
  two.socket.emit('live:frame', OTHER_FRAME);
  await eventually(() => [...viewers, one].every((c) => framesFrom(c, two.id).length === 1), 'two\'s frame everywhere');
  await sleep(Math.max(0, FRAME_GAP_MS - (Date.now() - started)));
  one.socket.emit('live:frame', FRAME);
  await eventually(() => [...viewers, two].every((c) => framesFrom(c, one.id).length === 2), 'one\'s second frame everywhere');

  for (const viewer of viewers) {
    const fromOne = framesFrom(viewer, one.id);
    assert.deepEqual(fromOne.map(({ args }) => args[0].seq), [1, 2], `seq at ${viewer.welcome.you.name}`);
    assert.equal(fromOne[0].args[0].name, 'one');
    assert.equal(fromOne[0].args[0].user, one.user);
    assert.ok(Buffer.from(fromOne[0].args[1]).equals(FRAME), 'the JPEG arrives byte-identical');
    const fromTwo = framesFrom(viewer, two.id);
    assert.equal(fromTwo[0].args[0].user, two.user);
    assert.ok(Buffer.from(fromTwo[0].args[1]).equals(OTHER_FRAME));
  }
  assert.equal(framesFrom(one, one.id).length, 0, 'a streamer never gets its own frames');
  assert.equal(framesFrom(two, two.id).length, 0);
});

test('a late joiner gets the current frame of streamers on both nodes', async (t, h, { nodes: [a, b] }) => {
  await untilRoomEmpty(h, a);
  await untilRoomEmpty(h, b);
  const one = await participant(h, a.url, 'one');
  const two = await participant(h, b.url, 'two');
  await join(one);
  await join(two);
  one.socket.emit('live:frame', FRAME);
  two.socket.emit('live:frame', OTHER_FRAME);
  await eventually(() => framesFrom(one, two.id).length === 1 && framesFrom(two, one.id).length === 1, 'each streamer\'s frame at the other');

  for (const [where, node] of [['B', b], ['A', a]]) {
    const late = await participant(h, node.url, `late-${where}`);
    const reply = await join(late);
    assert.deepEqual(reply.participants.map((p) => p.name).sort(), where === 'B' ? ['one', 'two'] : ['late-B', 'one', 'two']);
    await eventually(() => framesFrom(late, one.id).length === 1 && framesFrom(late, two.id).length === 1, `cached frames of both streamers at the late joiner on ${where}`);
    assert.ok(Buffer.from(framesFrom(late, one.id)[0].args[1]).equals(FRAME), 'node A\'s streamer\'s frame');
    assert.ok(Buffer.from(framesFrom(late, two.id)[0].args[1]).equals(OTHER_FRAME), 'node B\'s streamer\'s frame');
    await eventually(() => joinedIds(one).includes(late.id) && joinedIds(two).includes(late.id), 'live:joined of the late joiner on both nodes');
  }
});

test('leaving and disconnecting on one node announce live:left on the other and empty the list everywhere', async (t, h, { nodes: [a, b] }) => {
  await untilRoomEmpty(h, a);
  await untilRoomEmpty(h, b);
  const stays = await participant(h, a.url, 'stays');
  const leaves = await participant(h, b.url, 'leaves');
  const drops = await participant(h, b.url, 'drops');
  for (const client of [stays, leaves, drops]) await join(client);

  assert.deepEqual(await leaves.socket.timeout(5000).emitWithAck('live:leave'), { ok: true });
  drops.socket.disconnect();
  await eventually(() => leftIds(stays).length === 2, 'two live:left at node A');
  assert.deepEqual(leftIds(stays).sort(), [leaves.id, drops.id].sort());

  for (const node of [a, b]) {
    const newcomer = await participant(h, node.url, 'newcomer');
    const reply = await join(newcomer);
    assert.deepEqual(reply.participants.map((p) => p.id), [stays.id], `the list on ${node.url} holds only who stayed`);
    await newcomer.socket.timeout(5000).emitWithAck('live:leave');
  }
});

clusterTest('a node killed with kill -9: the viewers on the other node are told its participants left', null, async (t, h) => {
  // A killed node says nothing itself; the survivors notice it is gone (it stops
  // refreshing its presence) and announce its participants' departure.
  const { nodes: [a, b] } = await h.cluster({ nginx: false });
  const viewer = await participant(h, a.url, 'viewer');
  const staying = await participant(h, a.url, 'staying');
  const doomed = await participant(h, b.url, 'doomed');
  await join(viewer);
  await join(staying);
  await join(doomed);
  doomed.socket.emit('live:frame', FRAME);
  await eventually(() => framesFrom(viewer, doomed.id).length > 0, 'a frame from the node that will die');
  await eventually(() => joinedIds(viewer).includes(doomed.id), 'live:joined of the participant on node B');

  await b.kill9();
  await eventually(() => leftIds(viewer).includes(doomed.id), 'live:left for the participant of the killed node', 15_000);
  assert.ok(!leftIds(viewer).includes(staying.id), 'nobody on the surviving node is said to have left');
  const probe = await participant(h, a.url, 'probe');
  const reply = await join(probe);
  assert.deepEqual(reply.participants.map((p) => p.id).sort(), [viewer.id, staying.id].sort(), 'the room is the surviving node\'s participants');
});
