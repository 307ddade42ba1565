// Call-room signalling across nodes (SPEC §8 with §9): peers on two nodes find each other,
// signal each other and only each other, a call is full across nodes, and leaving on one
// node reaches the other. No browser: the official client plays the pages' part.
import assert from 'node:assert/strict';
import { expectNoEvent, once } from '../e2e/helpers.mjs';
import { sharedCluster } from './services.mjs';

const shared = sharedCluster({ args: ['--call-max', '3'] });
const test = shared.test;

async function caller(h, url, name) {
  const client = await h.client(url, { name, query: { lb: `${name}-${Math.random()}` } });
  client.id = client.welcome.you.conn;
  return client;
}

async function join(client, room) {
  const reply = await client.socket.timeout(5000).emitWithAck('call:join', { room });
  return reply;
}

const room = () => `cluster-${Math.random().toString(36).slice(2, 10)}`;

test('peers on two nodes find each other, and a signal reaches its target on the other node only', async (t, h, { nodes: [a, b] }) => {
  const name = room();
  const ann = await caller(h, a.url, 'ann');
  const bea = await caller(h, b.url, 'bea');
  const third = await caller(h, a.url, 'third');
  const elsewhere = await caller(h, b.url, 'elsewhere');

  assert.deepEqual((await join(ann, name)).peers, []);
  const annHearsOfBea = once(ann.socket, 'call:joined');
  const beaJoined = await join(bea, name);
  assert.equal(beaJoined.ok, true, JSON.stringify(beaJoined));
  assert.deepEqual(beaJoined.peers.map((peer) => peer.id), [ann.id], 'node B gives the peer on node A');
  assert.equal((await annHearsOfBea).id, bea.id, 'node A hears of the newcomer on node B');
  assert.deepEqual((await join(third, name)).peers.map((peer) => peer.id), [ann.id, bea.id], 'peers in the order they joined');
  assert.equal((await join(elsewhere, room())).ok, true);

  const offer = { type: 'offer', sdp: 'v=0 across nodes' };
  const arrived = once(ann.socket, 'call:signal');
  bea.socket.emit('call:signal', { to: ann.id, data: offer });
  assert.deepEqual(await arrived, { from: bea.id, data: offer });
  const answer = { type: 'answer', sdp: 'v=0 back' };
  const back = once(bea.socket, 'call:signal');
  ann.socket.emit('call:signal', { to: bea.id, data: answer });
  assert.deepEqual(await back, { from: ann.id, data: answer });
  await expectNoEvent(third.socket, 'call:signal');
  await expectNoEvent(elsewhere.socket, 'call:signal');

  // Someone in another call, on another node, is not a peer.
  const refused = once(bea.socket, 'call:error');
  bea.socket.emit('call:signal', { to: elsewhere.id, data: offer });
  assert.equal((await refused).code, 'not_in_room');
  await expectNoEvent(elsewhere.socket, 'call:signal');
});

test('a call is full across nodes, and a place freed on one node is free on the other', async (t, h, { nodes: [a, b] }) => {
  const name = room();
  const members = [await caller(h, a.url, 'one'), await caller(h, b.url, 'two'), await caller(h, a.url, 'three')];
  for (const member of members) assert.equal((await join(member, name)).ok, true);
  const late = await caller(h, b.url, 'late');
  const full = await join(late, name);
  assert.equal(full.ok, false);
  assert.equal(full.error.code, 'room_full');

  const left = once(members[1].socket, 'call:left');
  assert.deepEqual(await members[0].socket.timeout(5000).emitWithAck('call:leave'), { ok: true });
  assert.equal((await left).id, members[0].id, 'node B hears that node A\'s participant left');
  const now = await join(late, name);
  assert.equal(now.ok, true, JSON.stringify(now));
  assert.deepEqual(now.peers.map((peer) => peer.id).sort(), [members[1].id, members[2].id].sort());

  // A disconnect on node A is a departure on node B too.
  const gone = once(late.socket, 'call:left');
  members[2].close();
  assert.equal((await gone).id, members[2].id);
  const refusedAfter = once(late.socket, 'call:error');
  late.socket.emit('call:signal', { to: members[2].id, data: { type: 'offer', sdp: 'x' } });
  assert.equal((await refusedAfter).code, 'not_in_room', 'a signal to someone who left is refused');
});
