// Identity (SPEC §10, §2): a browser's token gives it a stable user id; the token itself goes
// nowhere; `people` in welcome and presence lists who is here, one entry per user.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  e2e, sendGoodClip, loadFrames, eventually, metricsText, WAIT_MS,
} from './helpers.mjs';

const FRAMES = loadFrames();
const USER_ID = /^[a-z2-7]{20}$/;
/** A token as the page makes one: 32 random bytes, base64url. */
const token = (seed) => Buffer.alloc(32, seed).toString('base64url');

/** Every file under `folder`, with its bytes. */
function filesUnder(folder) {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [{ path, bytes: readFileSync(path) }];
  });
}

e2e('the same token gives the same user id across reconnects and restarts; the clip carries it', async (t, h) => {
  const first = await h.server();
  const mine = token(1);
  const a = await h.client(first.url, { name: 'amber', token: mine });
  const { id, name, conn } = a.welcome.you;
  assert.match(id, USER_ID);
  assert.equal(name, 'amber');
  assert.equal(conn, a.socket.id, 'conn is this connection\'s socket id');
  const clip = await sendGoodClip(a.socket, { message: 'me', frames: [FRAMES[0]] });
  assert.deepEqual(clip.author, { id, name: 'amber' });

  a.close();
  const again = await h.client(first.url, { name: 'amber', token: mine });
  assert.equal(again.welcome.you.id, id, 'the same id on reconnect');
  assert.notEqual(again.welcome.you.conn, conn, 'a new connection');

  await first.stop();
  const second = await h.server({ dataDir: first.dataDir });
  const afterRestart = await h.client(second.url, { name: 'renamed', token: mine });
  assert.equal(afterRestart.welcome.you.id, id, 'the same id after a restart (the secret is kept)');
  assert.deepEqual(afterRestart.replay[0].author, { id, name: 'amber' });
});

e2e('two tokens with the same name are two users; no or an invalid token gets a fresh id each time', async (t, h) => {
  const server = await h.server();
  const one = await h.client(server.url, { name: 'sam', token: token(2) });
  const other = await h.client(server.url, { name: 'sam', token: token(3) });
  assert.notEqual(one.welcome.you.id, other.welcome.you.id, 'a borrowed name is not a borrowed id');
  for (const bad of [undefined, 'short', 'x'.repeat(65), 'not base64url!!not base64url!!', 42]) {
    const first = await h.client(server.url, { name: 'anon', token: bad });
    const second = await h.client(server.url, { name: 'anon', token: bad });
    assert.match(first.welcome.you.id, USER_ID);
    assert.notEqual(first.welcome.you.id, second.welcome.you.id, `token ${JSON.stringify(bad)}: a fresh id each time`);
  }
});

e2e('--id-secret decides the ids: another secret, other ids for the same token', async (t, h) => {
  const one = await h.server({ args: ['--id-secret', 'first-secret'] });
  const two = await h.server({ args: ['--id-secret', 'second-secret'] });
  const mine = token(4);
  const onOne = await h.client(one.url, { token: mine });
  const onOneAgain = await h.client(one.url, { token: mine });
  const onTwo = await h.client(two.url, { token: mine });
  assert.equal(onOne.welcome.you.id, onOneAgain.welcome.you.id);
  assert.notEqual(onOne.welcome.you.id, onTwo.welcome.you.id);
});

e2e('the token appears in no log line, no stored file, no event and not in /metrics', async (t, h) => {
  // The most verbose log there is: socketioxide would print the handshake's auth at debug.
  const server = await h.server({ args: ['--admin-token', 'identity-suite-admin-token'], env: { RUST_LOG: 'trace' } });
  const secret = token(5);
  const watcher = await h.client(server.url, { name: 'watcher' });
  const me = await h.client(server.url, { name: 'leaky', token: secret, transports: ['polling'] });
  await sendGoodClip(me.socket, { message: 'hello', frames: [FRAMES[1]] });
  await eventually(() => watcher.received.message.length === 1, 'the clip to reach the watcher');
  await eventually(() => watcher.received.presence.some((p) => p.people.some((person) => person.id === me.welcome.you.id)), 'presence with the new user', WAIT_MS, 50);
  const live = await me.socket.timeout(WAIT_MS).emitWithAck('live:join');
  const report = await watcher.socket.timeout(WAIT_MS).emitWithAck('report', { key: watcher.received.message[0].key });
  assert.equal(report.ok, true);
  const reports = await (await fetch(`${server.url}/admin/reports`, { headers: { authorization: 'Bearer identity-suite-admin-token' } })).text();
  const metrics = await metricsText(server.url);
  me.close();
  await server.stop();

  const everything = [
    ['the server\'s output', server.output()],
    ['the events the others got', JSON.stringify(watcher.events)],
    ['the events it got back', JSON.stringify(me.events)],
    ['the live room', JSON.stringify(live)],
    ['/admin/reports', reports],
    ['/metrics', metrics],
  ];
  assert.ok(server.output().length > 10_000, 'the trace log is really verbose');
  for (const [where, text] of everything) {
    assert.ok(!text.includes(secret), `the token is not in ${where}`);
  }
  const files = filesUnder(server.dataDir);
  assert.ok(files.some(({ path }) => path.endsWith('.gif')), 'the store was written');
  for (const { path, bytes } of files) {
    assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `the token is not in ${path}`);
  }
  assert.ok(statSync(join(server.dataDir, 'id-secret')).mode % 0o1000 === 0o600, 'the id secret is private');
});

e2e('people: one entry per user however many tabs, in welcome and in coalesced presence', async (t, h) => {
  const server = await h.server();
  const since = Date.now();
  const amber = await h.client(server.url, { name: 'amber', token: token(6) });
  assert.deepEqual(amber.welcome.people, [{ id: amber.welcome.you.id, name: 'amber' }], 'welcome lists you');
  assert.equal(amber.welcome.online, 1);

  const basil = await h.client(server.url, { name: 'basil', token: token(7) });
  const basilTab = await h.client(server.url, { name: 'basil', token: token(7) });
  assert.deepEqual(basilTab.welcome.people.map((p) => p.name), ['basil', 'amber'], 'newest first, one entry for two tabs');
  assert.equal(basilTab.welcome.online, 3, 'online counts connections');
  const expected = (online, names) => (p) => p.online === online && JSON.stringify(p.people.map((x) => x.name)) === JSON.stringify(names);
  await eventually(() => amber.received.presence.some(expected(3, ['basil', 'amber'])), 'presence: 3 online, basil and amber');
  // Coalesced (SPEC §2: at most one a second), not one presence for each connect: amber can
  // have been sent no more than one for each second since it connected, plus the first,
  // however long the connects took. (How many a watcher gets while thousands connect is a
  // figure of the load tool, phase e.)
  const elapsed = Date.now() - since;
  const most = Math.floor(elapsed / 1000) + 1;
  assert.ok(amber.received.presence.length <= most, `coalesced: ${amber.received.presence.length} presence events in ${elapsed} ms (at most ${most})`);

  basil.close();
  await eventually(() => amber.received.presence.at(-1)?.online === 2, 'presence: 2 online');
  assert.deepEqual(amber.received.presence.at(-1).people.map((p) => p.name), ['basil', 'amber'], 'basil still has a tab');
  basilTab.close();
  await eventually(() => amber.received.presence.at(-1)?.online === 1, 'presence: 1 online', WAIT_MS, 50);
  assert.deepEqual(amber.received.presence.at(-1).people, [{ id: amber.welcome.you.id, name: 'amber' }], 'basil left');
});
