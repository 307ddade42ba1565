// The chat across nodes (SPEC §8 with §2, §4, §10): two loopchat nodes on one Redis and
// nginx in front (deploy/nginx/loopchat.conf), reached directly and through nginx, over
// WebSocket and long-polling, with the official socket.io-client. One cluster serves every
// test of this file; each test closes its clients.
//
// Fails until cluster mode lands (issue 11): the nodes are started with --redis-url.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import {
  once, expectNoEvent, eventually, sendClip, loadFrames, fetchGif, assertClip, assertGif,
  metricsText, metricValue, replayKeys,
} from '../e2e/helpers.mjs';
import { clipKeysInRedis, sharedCluster } from './services.mjs';

const FRAMES = loadFrames();
const TEN_MINUTES_MS = 10 * 60 * 1000;
const shared = sharedCluster({});
const test = shared.test;
const key = (what) => `${what}-${Math.random().toString(36).slice(2, 10)}`;
const token = (seed) => Buffer.alloc(32, seed).toString('base64url');

/**
 * One client of each kind: on node A and on node B, each over WebSocket and over polling, and
 * through nginx over both, each with its own sticky key.
 */
async function everyKindOfClient(h, { redis, nodes: [a, b], url }) {
  return {
    'A websocket': await h.client(a.url, { name: 'a-ws' }),
    'A polling': await h.client(a.url, { name: 'a-poll', transports: ['polling'] }),
    'B websocket': await h.client(b.url, { name: 'b-ws' }),
    'B polling': await h.client(b.url, { name: 'b-poll', transports: ['polling'] }),
    'nginx websocket': await h.client(url, { name: 'lb-ws', query: { lb: key('lb-ws') } }),
    'nginx polling': await h.client(url, { name: 'lb-poll', transports: ['polling'], query: { lb: key('lb-poll') } }),
  };
}

test('a clip sent on one node reaches every other socket on both nodes exactly once, and never its sender', async (t, h, cluster) => {
  const clients = await everyKindOfClient(h, cluster);
  for (const senderKind of ['A websocket', 'B polling', 'nginx polling']) {
    const sender = clients[senderKind];
    const others = Object.entries(clients).filter(([kind]) => kind !== senderKind);
    const arrivals = others.map(([, other]) => once(other.socket, 'message'));
    const { reply, event, eventName } = await sendClip(sender.socket, { id: `from ${senderKind}`, message: `hello from ${senderKind}`, frames: FRAMES });
    assert.equal(reply.ok, true, `${senderKind}: ack ${JSON.stringify(reply)}`);
    assert.equal(eventName, 'messageack');
    const clip = reply.message;
    assertClip(assert, clip, {
      id: `from ${senderKind}`, author: sender.welcome.you, message: `hello from ${senderKind}`,
      frames: 10, width: 200, height: 200, delay_ms: 200, ttl_ms: TEN_MINUTES_MS,
    });
    assert.deepEqual(event, clip, 'messageack carries the Clip of the ack');
    for (const [i, arrival] of arrivals.entries()) assert.deepEqual(await arrival, clip, `${others[i][0]} gets the Clip from ${senderKind}`);

    // Nothing more: not a second copy (the adapter must not deliver the sending node's own
    // publication again), and nothing at the sender.
    await expectNoEvent(sender.socket, 'message');
    for (const [kind, other] of others) {
      assert.equal(other.received.message.filter((m) => m.key === clip.key).length, 1, `${kind} got the clip from ${senderKind} exactly once`);
    }
    assert.equal(sender.received.message.filter((m) => m.key === clip.key).length, 0, `${senderKind} never gets its own clip as \`message\``);
  }
});

test('replay, the chat page and /clips/{key}.gif are the same on every node and through nginx', async (t, h, cluster) => {
  const { nodes: [a, b], url } = cluster;
  const clients = await everyKindOfClient(h, cluster);
  const sent = [];
  for (const kind of ['A websocket', 'B websocket', 'nginx polling']) {
    const { reply } = await sendClip(clients[kind].socket, { message: `replayed from ${kind}`, frames: FRAMES.slice(0, 3 + sent.length) });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    // The ack may come back before the broadcast reaches the other node's clients.
    const receiver = clients[kind === 'A websocket' ? 'B polling' : 'A polling'];
    await eventually(() => receiver.received.message.some((clip) => clip.key === reply.message.key), `the clip from ${kind} at another node`);
    sent.push(reply.message);
  }

  const replays = {};
  for (const [where, base] of [['A', a.url], ['B', b.url], ['nginx', url]]) {
    const probe = await h.client(base, { name: `late-${where}`, query: { lb: key('late') } });
    replays[where] = probe.replay;
  }
  assert.deepEqual(replays.A.slice(-3), sent, 'node A replays the three clips, oldest first, as acked');
  assert.deepEqual(replays.B, replays.A, 'node B replays exactly what node A replays');
  assert.deepEqual(replays.nginx, replays.A, 'and so does whichever node nginx picks');

  for (const clip of sent) {
    const { body, etag } = await assertGif(assert, a.url, clip, { frames: clip.frames });
    for (const base of [b.url, url]) {
      const other = await fetchGif(base, clip.clip);
      assert.equal(other.response.status, 200, `${clip.clip} on ${base}`);
      assert.equal(other.response.headers.get('etag'), etag, 'the same ETag on every node');
      assert.ok(other.body.equals(body), 'the same GIF bytes on every node');
      const revalidated = await fetch(new URL(clip.clip, base), { headers: { 'If-None-Match': etag } });
      assert.equal(revalidated.status, 304, 'an ETag from node A revalidates on another node');
    }
  }

  for (const base of [a.url, b.url]) {
    const page = await (await fetch(`${base}/`)).text();
    for (const clip of sent) assert.ok(page.includes(`data-key="${clip.key}"`), `the chat page of ${base} is rendered with clip ${clip.key}`);
  }
});

test('online counts the connections of both nodes and people lists the users of both', async (t, h, cluster) => {
  const { nodes: [a, b] } = cluster;
  // Earlier tests' clients have gone: wait for the count to settle at the watcher alone.
  const watcher = await h.client(b.url, { name: 'watcher', token: token(1) });
  const latest = () => watcher.received.presence.at(-1) ?? watcher.welcome;
  await eventually(() => latest().online === 1, 'online 1 with the watcher alone');

  const onA = [
    await h.client(a.url, { name: 'ann', token: token(2) }),
    await h.client(a.url, { name: 'ann-second-tab', token: token(2) }),
    await h.client(a.url, { name: 'abe', token: token(3), transports: ['polling'] }),
  ];
  const onB = [await h.client(b.url, { name: 'bea', token: token(4) })];
  await eventually(() => latest().online === 5, 'online 5 (three on A, two on B) at the watcher on B');
  const people = () => latest().people.map((person) => person.id).sort();
  const users = [watcher, onA[0], onA[2], onB[0]].map((client) => client.welcome.you.id).sort();
  await eventually(() => JSON.stringify(people()) === JSON.stringify(users), 'four people, one per user, from both nodes');

  // A newcomer on node A sees the same from there. Its welcome may hold node B's tally of up
  // to a second ago (each node writes its own once a second); presence then brings it up to date.
  const newcomer = await h.client(a.url, { name: 'newcomer', token: token(5) });
  const newcomerSees = () => newcomer.received.presence.at(-1) ?? newcomer.welcome;
  await eventually(() => newcomerSees().online === 6, 'online 6 at the newcomer on node A, counting node B\'s');
  assert.ok(newcomerSees().people.some((person) => person.id === watcher.welcome.you.id), 'and node B\'s users are listed');

  for (const client of onA) client.close();
  await eventually(() => latest().online === 3 && !people().includes(onA[2].welcome.you.id), 'node A\'s departures seen on node B');
});

test('the same browser token is the same user on every node (one id secret for the cluster)', async (t, h, cluster) => {
  const { nodes: [a, b], url } = cluster;
  const onA = await h.client(a.url, { name: 'same', token: token(7) });
  const onB = await h.client(b.url, { name: 'same', token: token(7) });
  const viaNginx = await h.client(url, { name: 'same', token: token(7), query: { lb: key('same') } });
  const someoneElse = await h.client(b.url, { name: 'other', token: token(8) });
  assert.equal(onB.welcome.you.id, onA.welcome.you.id);
  assert.equal(viaNginx.welcome.you.id, onA.welcome.you.id);
  assert.notEqual(someoneElse.welcome.you.id, onA.welcome.you.id);
  assert.notEqual(onB.welcome.you.conn, onA.welcome.you.conn, 'each connection has its own id');
});

test('every node reports Redis reachable, two nodes, and healthy', async (t, h, cluster) => {
  for (const node of cluster.nodes) {
    const health = await fetch(`${node.url}/healthz`);
    assert.equal(health.status, 200, `/healthz of ${node.url}`);
    await eventually(async () => {
      const metrics = await metricsText(node.url);
      return metricValue(metrics, 'loopchat_redis_up') === 1 && metricValue(metrics, 'loopchat_cluster_nodes') === 2;
    }, `loopchat_redis_up 1 and loopchat_cluster_nodes 2 on ${node.url}`);
  }
});

test('every clip lives in Redis: each node holds nothing of its own', async (t, h, cluster) => {
  const { redis, nodes: [a, b], startedAt } = cluster;
  const sender = await h.client(a.url, { name: 'stored' });
  const before = await clipKeysInRedis(redis, startedAt);
  const { reply } = await sendClip(sender.socket, { message: 'in redis', frames: FRAMES.slice(0, 2) });
  assert.equal(reply.ok, true);
  const after = await clipKeysInRedis(redis, startedAt);
  assert.deepEqual([...after].filter((k) => !before.has(k)), [reply.message.key], 'Redis names the new clip and nothing else new');
  assert.ok((await replayKeys(b.url)).includes(reply.message.key));

  // And on the nodes' disks: each node was started with a --data-dir of its own (the e2e
  // helper passes one), which cluster mode makes at start and leaves empty (SPEC §8: it is
  // unused). A node's sled files, its clips/ folder, a clip's file or its own id-secret there would be
  // state that the other node does not share. (With --tls-self-signed the certificate and
  // its key would be kept there; these nodes serve plain HTTP.) By now the clip was stored,
  // served (the replay above) and both nodes have run a while; earlier tests stored more.
  for (const node of [a, b]) {
    assert.deepEqual(filesUnder(node.dataDir), [], `nothing in ${node.url}'s --data-dir ${node.dataDir}`);
  }
});

/** Every file and folder under `dir`, as paths relative to it. */
function filesUnder(dir) {
  return readdirSync(dir, { recursive: true }).map(String).sort();
}
