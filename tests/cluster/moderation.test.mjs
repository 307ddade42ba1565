// Moderation across nodes (SPEC §8 with §10): a removal, a ban (with purge), its lifting and
// reports made through one node hold on the other, whose clients are told; either node
// lists the newest clips of both from the shared store.
//
// Fails until cluster mode lands (issue 11): the nodes are started with --redis-url.
import assert from 'node:assert/strict';
import {
  once, expectNoEvent, eventually, sendClip, sendGoodClip, loadFrames, fetchGif, replayKeys, WAIT_MS,
} from '../e2e/helpers.mjs';
import { clipKeysInRedis, sharedCluster } from './services.mjs';

const FRAMES = loadFrames();
const ADMIN = 'cluster-moderation-admin-token';
const token = (seed) => Buffer.alloc(32, seed).toString('base64url');
const shared = sharedCluster({ args: ['--admin-token', ADMIN] });
const test = shared.test;

async function admin(url, method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

test('a clip removed through node A is gone on node B too, and node B\'s clients are told', async (t, h, { redis, nodes: [a, b] }) => {
  const author = await h.client(b.url, { name: 'author', token: token(1) });
  const readerA = await h.client(a.url, { name: 'reader-a', token: token(2) });
  const readerB = await h.client(b.url, { name: 'reader-b', token: token(3), transports: ['polling'] });
  const arrived = once(readerA.socket, 'message', WAIT_MS, (clip) => clip.message === 'keep me');
  const doomed = await sendGoodClip(author.socket, { message: 'take me down', frames: [FRAMES[0]] });
  const kept = await sendGoodClip(author.socket, { message: 'keep me', frames: [FRAMES[1]] });
  await arrived;

  const told = [author, readerA, readerB].map((client) => once(client.socket, 'message:removed'));
  assert.equal((await admin(a.url, 'DELETE', `/admin/clips/${doomed.key}`)).status, 204);
  for (const removal of told) assert.deepEqual(await removal, { key: doomed.key });
  for (const node of [a, b]) {
    const replay = await replayKeys(node.url);
    assert.ok(!replay.includes(doomed.key) && replay.includes(kept.key), `replay of ${node.url} without the removed clip`);
    assert.equal((await fetchGif(node.url, doomed.clip)).response.status, 404, `the GIF is 404 on ${node.url}`);
    assert.equal((await fetchGif(node.url, kept.clip)).response.status, 200);
  }
  assert.ok(!(await clipKeysInRedis(redis)).has(doomed.key), 'no key in Redis names the removed clip');
  assert.equal((await admin(b.url, 'DELETE', `/admin/clips/${doomed.key}`)).status, 404, 'already gone, as node B sees it');
});

test('a ban made through node A refuses clips and live frames on node B, purges there, and is lifted through node B', async (t, h, { nodes: [a, b] }) => {
  const troll = await h.client(b.url, { name: 'troll', token: token(4) });
  const readerA = await h.client(a.url, { name: 'reader-a', token: token(5) });
  const readerB = await h.client(b.url, { name: 'reader-b', token: token(6) });
  const trollClips = [];
  for (let i = 0; i < 2; i += 1) trollClips.push(await sendGoodClip(troll.socket, { message: `spam ${i}`, frames: [FRAMES[i]] }));
  const innocent = await sendGoodClip(readerA.socket, { message: 'hello', frames: [FRAMES[3]] });
  const user = troll.welcome.you.id;

  const removedAtA = [];
  readerA.socket.on('message:removed', ({ key }) => removedAtA.push(key));
  const ban = await admin(a.url, 'POST', '/admin/bans', { user, minutes: 60, reason: 'spam', purge: true });
  assert.equal(ban.status, 201, JSON.stringify(ban.json));
  assert.equal(ban.json.purged, 2);
  await eventually(() => removedAtA.length === 2, 'message:removed for both purged clips at node A');
  assert.deepEqual(removedAtA.sort(), trollClips.map((c) => c.key).sort());
  for (const node of [a, b]) {
    const replay = await replayKeys(node.url);
    assert.ok(replay.includes(innocent.key), 'the innocent clip stays');
    assert.ok(trollClips.every((clip) => !replay.includes(clip.key)), `the purged clips are gone from ${node.url}'s replay`);
  }

  // On node B, where the troll is connected: clips refused, live frames dropped.
  const refused = await sendClip(troll.socket, { message: 'again', frames: [FRAMES[0]] });
  assert.equal(refused.reply.error?.code, 'banned', JSON.stringify(refused.reply));
  await troll.socket.timeout(WAIT_MS).emitWithAck('live:join');
  await readerA.socket.timeout(WAIT_MS).emitWithAck('live:join');
  await readerB.socket.timeout(WAIT_MS).emitWithAck('live:join');
  const liveError = once(troll.socket, 'live:error');
  troll.socket.emit('live:frame', FRAMES[0]);
  assert.equal((await liveError).code, 'banned');
  await Promise.all([expectNoEvent(readerA.socket, 'live:frame'), expectNoEvent(readerB.socket, 'live:frame')]);

  // A new connection of the same browser, on either node, is still banned.
  const trollOnA = await h.client(a.url, { name: 'troll', token: token(4) });
  assert.equal((await sendClip(trollOnA.socket, { message: 'other door', frames: [FRAMES[0]] })).reply.error?.code, 'banned');
  assert.deepEqual((await admin(b.url, 'GET', '/admin/bans')).json, [{ user, until: ban.json.until, reason: 'spam', address: false }], 'node B lists the ban');

  assert.equal((await admin(b.url, 'DELETE', `/admin/bans/${user}`)).status, 204);
  assert.equal((await admin(a.url, 'DELETE', `/admin/bans/${user}`)).status, 404, 'lifted for node A too');
  assert.deepEqual((await admin(a.url, 'GET', '/admin/bans')).json, []);
  const welcomeBack = await sendGoodClip(trollOnA.socket, { message: 'sorry', frames: [FRAMES[2]] });
  assert.equal(welcomeBack.author.id, user, 'clips go through on node A once the ban is lifted on node B');
});

test('a ban made through node B ends the banned user\'s call on node A, and its peers on both nodes are told', async (t, h, { nodes: [a, b] }) => {
  const room = `banned-call-${Math.random().toString(36).slice(2, 10)}`;
  const joinCall = async (client) => {
    const reply = await client.socket.timeout(WAIT_MS).emitWithAck('call:join', { room });
    assert.equal(reply.ok, true, JSON.stringify(reply));
  };
  const troll = await h.client(a.url, { name: 'troll', token: token(10) });
  const peerA = await h.client(a.url, { name: 'peer-a', token: token(11) });
  const peerB = await h.client(b.url, { name: 'peer-b', token: token(12) });
  for (const client of [peerA, peerB, troll]) await joinCall(client);
  const trollId = troll.welcome.you.conn;

  const left = [peerA, peerB].map((client) => once(client.socket, 'call:left'));
  const ended = once(troll.socket, 'call:ended');
  const user = troll.welcome.you.id;
  assert.equal((await admin(b.url, 'POST', '/admin/bans', { user, minutes: 60 })).status, 201);
  for (const departure of left) assert.deepEqual(await departure, { id: trollId });
  assert.equal((await ended).code, 'banned');

  // The place is free on both nodes, and the banned one cannot come back.
  const refused = await troll.socket.timeout(WAIT_MS).emitWithAck('call:join', { room });
  assert.equal(refused.error?.code, 'banned', JSON.stringify(refused));
  await expectNoEvent(peerB.socket, 'call:joined');
  assert.equal((await admin(a.url, 'DELETE', `/admin/bans/${user}`)).status, 204);
});

test('reports made on both nodes are counted once per user and listed by either node', async (t, h, { nodes: [a, b] }) => {
  const author = await h.client(a.url, { name: 'author', token: token(7) });
  const clip = await sendGoodClip(author.socket, { message: 'reported', frames: [FRAMES[0]] });
  const report = async (client) => client.socket.timeout(WAIT_MS).emitWithAck('report', { key: clip.key });
  const onA = await h.client(a.url, { name: 'reader', token: token(8) });
  const sameUserOnB = await h.client(b.url, { name: 'reader', token: token(8) });
  const otherOnB = await h.client(b.url, { name: 'other', token: token(9) });
  assert.deepEqual(await report(onA), { ok: true });
  assert.deepEqual(await report(sameUserOnB), { ok: true });
  assert.deepEqual(await report(otherOnB), { ok: true });
  for (const node of [a, b]) {
    const { json } = await admin(node.url, 'GET', '/admin/reports');
    assert.deepEqual(json.filter((entry) => entry.key === clip.key).map(({ reports }) => reports), [2], `two users reported it, as ${node.url} sees it`);
  }
});

test('GET /admin/clips on either node lists the newest clips of both, newest first with their reports', async (t, h, { nodes: [a, b] }) => {
  const onA = await h.client(a.url, { name: 'author-a', token: token(13) });
  const onB = await h.client(b.url, { name: 'author-b', token: token(14) });
  const reader = await h.client(b.url, { name: 'reader', token: token(15) });
  const sent = [
    await sendGoodClip(onA.socket, { message: 'first, on A', frames: [FRAMES[0]] }),
    await sendGoodClip(onB.socket, { message: 'second, on B', frames: [FRAMES[1]] }),
    await sendGoodClip(onA.socket, { message: 'third, on A', frames: [FRAMES[2]] }),
  ];
  assert.deepEqual(await reader.socket.timeout(WAIT_MS).emitWithAck('report', { key: sent[1].key }), { ok: true });

  // The other tests of this file leave clips behind: these three are the newest.
  for (const node of [a, b]) {
    const { status, json } = await admin(node.url, 'GET', '/admin/clips?limit=3');
    assert.equal(status, 200);
    assert.deepEqual(json.map(({ key, reports }) => ({ key, reports })), [
      { key: sent[2].key, reports: 0 },
      { key: sent[1].key, reports: 1 },
      { key: sent[0].key, reports: 0 },
    ], `as ${node.url} lists them`);
    assert.deepEqual(json.map((entry) => entry.clip), [...sent].reverse(), 'each entry carries its Clip');
    assert.deepEqual((await admin(node.url, 'GET', '/admin/clips')).json.slice(0, 3).map((entry) => entry.key), [sent[2].key, sent[1].key, sent[0].key], 'and first by default');
    assert.deepEqual((await admin(node.url, 'GET', '/admin/clips?limit=1')).json.map((entry) => entry.key), [sent[2].key]);
  }

  assert.equal((await admin(a.url, 'DELETE', `/admin/clips/${sent[2].key}`)).status, 204);
  assert.deepEqual((await admin(b.url, 'GET', '/admin/clips?limit=2')).json.map((entry) => entry.key), [sent[1].key, sent[0].key], 'a removal through A is not listed by B');

  for (const query of ['limit=0', 'limit=201', 'limit=x', 'limt=3']) {
    const { status, json } = await admin(b.url, 'GET', `/admin/clips?${query}`);
    assert.equal(status, 400, query);
    assert.match(json.error, /limit/, query);
  }
  const anonymous = await fetch(`${a.url}/admin/clips`);
  assert.equal(anonymous.status, 401, 'the token is needed on a cluster node too');
});
