// The moderation API (SPEC §10) and what it does to the chat: delete a clip, ban (with
// purge), list and lift bans, reports, the newest clips; every route's 404 without
// --admin-token, 401 with a wrong token and 400 for a bad body or query; and the
// moderator's page at /admin, served without the bearer header (tests/browser/admin.test.mjs
// drives it).
import assert from 'node:assert/strict';
import {
  e2e, once, expectNoEvent, sendClip, sendGoodClip, loadFrames, fetchGif, replayKeys, clipsStored,
  eventually, WAIT_MS,
} from './helpers.mjs';

const FRAMES = loadFrames();
const ADMIN = 'moderation-suite-admin-token';
const token = (seed) => Buffer.alloc(32, seed).toString('base64url');
const SOME_USER = 'aaaaaaaaaaaaaaaaaaaa';
const SOME_KEY = '0190a5c6-7d1e-7c3a-9b2f-1234567890ab';

/** One moderation request; `auth` false sends no token, a string sends that one. */
async function admin(url, method, path, { body, auth = ADMIN, forwardedFor } = {}) {
  const headers = {};
  // The client address a server started with `--trusted-proxy 127.0.0.1/32` counts.
  if (forwardedFor) headers['x-forwarded-for'] = forwardedFor;
  if (auth) headers.authorization = `Bearer ${auth}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: text ? (() => { try { return JSON.parse(text); } catch { return undefined; } })() : undefined };
}

const ROUTES = [
  ['DELETE', `/admin/clips/${SOME_KEY}`],
  ['POST', '/admin/bans', { user: SOME_USER, minutes: 5 }],
  ['GET', '/admin/bans'],
  ['DELETE', `/admin/bans/${SOME_USER}`],
  ['GET', '/admin/reports'],
  ['GET', '/admin/clips'],
  ['GET', '/admin/clips?limit=5'],
  ['GET', '/admin/clips?limit=0'],
  ['GET', '/admin/anything-else'],
];

e2e('without --admin-token every /admin/ path is 404, with or without a token', async (t, h) => {
  const server = await h.server();
  for (const [method, path, body] of [...ROUTES, ['GET', '/admin'], ['GET', '/admin/'], ['POST', '/admin']]) {
    for (const auth of [false, ADMIN]) {
      const { status } = await admin(server.url, method, path, { body, auth });
      assert.equal(status, 404, `${method} ${path} (token: ${Boolean(auth)})`);
    }
  }
});

e2e('with --admin-token the moderator\'s page is served at /admin without a token, as the other pages are', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN] });
  const chat = await fetch(`${server.url}/`);
  const page = await fetch(`${server.url}/admin`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.equal(page.headers.get('content-security-policy'), chat.headers.get('content-security-policy'), 'the same policy as the chat page');
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  const html = await page.text();
  assert.match(html, /<script type="module" src="\/js\/admin\.js"><\/script>/);
  assert.doesNotMatch(html, /<script>|<script type="module">|\son[a-z]+=/, 'no inline script or handler');
  assert.doesNotMatch(html, new RegExp(ADMIN), 'the page holds no token');
  for (const module of ['admin.js', 'admin-api.js', 'admin-render.js', 'admin-dialogs.js']) {
    const script = await fetch(`${server.url}/js/${module}`);
    assert.equal(script.status, 200, module);
    assert.match(script.headers.get('content-type'), /javascript/, module);
  }

  const slash = await fetch(`${server.url}/admin/`, { redirect: 'manual' });
  assert.equal(slash.status, 308, '/admin/ leads to the page');
  assert.equal(slash.headers.get('location'), '/admin');
  // Only the page is outside the token check.
  assert.equal((await admin(server.url, 'GET', '/admin/clips', { auth: false })).status, 401);
  assert.equal((await admin(server.url, 'GET', '/admin/page', { auth: false })).status, 401);
});

e2e('with --admin-token every /admin/ path is 401 without the right bearer token', async (t, h) => {
  // More failed sign-ins than one address may make in a minute (10, SPEC §13): each route
  // is tried from an address of its own, named by X-Forwarded-For from a trusted proxy.
  const server = await h.server({ args: ['--admin-token', ADMIN, '--trusted-proxy', '127.0.0.1/32'] });
  for (const [index, [method, path, body]] of ROUTES.entries()) {
    const forwardedFor = `198.51.100.${index + 1}`;
    for (const auth of [false, 'wrong-token-wrong-token', `${ADMIN}x`, ADMIN.slice(0, -1)]) {
      const { status, json } = await admin(server.url, method, path, { body, auth, forwardedFor });
      assert.equal(status, 401, `${method} ${path} with ${JSON.stringify(auth)}`);
      assert.match(json.error, /Bearer/, 'the answer says how to authenticate');
    }
  }
  const basic = await fetch(`${server.url}/admin/bans`, { headers: { authorization: `Basic ${ADMIN}` } });
  assert.equal(basic.status, 401, 'only a Bearer token counts');
  assert.doesNotMatch(server.output(), new RegExp(ADMIN), 'the admin token is in no log line');
});

e2e('a ban body that does not parse or holds a bad value is 400, saying what is wrong', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN] });
  const cases = [
    ['not JSON', '{ user: nope', /JSON|parse|syntax/i],
    ['no user', { minutes: 5 }, /user/],
    ['a user that is no user id', { user: 'Mallory', minutes: 5 }, /user id/],
    ['no minutes', { user: SOME_USER }, /minutes/],
    ['zero minutes', { user: SOME_USER, minutes: 0 }, /minutes/],
    ['negative minutes', { user: SOME_USER, minutes: -5 }, /minutes|invalid value/],
    ['more than a year', { user: SOME_USER, minutes: 525_601 }, /minutes/],
    ['minutes as text', { user: SOME_USER, minutes: 'five' }, /minutes|invalid type/],
    ['an unknown field', { user: SOME_USER, minutes: 5, forever: true }, /forever|unknown field/],
    ['purge not a boolean', { user: SOME_USER, minutes: 5, purge: 'yes' }, /purge|invalid type/],
    ['a reason too long', { user: SOME_USER, minutes: 5, reason: 'x'.repeat(501) }, /reason/],
  ];
  for (const [what, body, says] of cases) {
    const { status, json } = await admin(server.url, 'POST', '/admin/bans', { body });
    assert.equal(status, 400, what);
    assert.match(json.error, says, `${what}: ${json.error}`);
  }
  const noType = await fetch(`${server.url}/admin/bans`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` }, body: '{}' });
  assert.equal(noType.status, 400, 'a body that is not declared JSON');
  assert.deepEqual((await admin(server.url, 'GET', '/admin/bans')).json, [], 'no bad body made a ban');
});

e2e('DELETE /admin/clips/{key}: gone from replay and GIF, message:removed reaches everyone; unknown is 404', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN] });
  const author = await h.client(server.url, { name: 'author', token: token(1) });
  const reader = await h.client(server.url, { name: 'reader', token: token(2) });
  const arrived = once(reader.socket, 'message');
  const doomed = await sendGoodClip(author.socket, { message: 'take me down', frames: [FRAMES[0]] });
  const kept = await sendGoodClip(author.socket, { message: 'keep me', frames: [FRAMES[1]] });
  await arrived;

  const atReader = once(reader.socket, 'message:removed');
  const atAuthor = once(author.socket, 'message:removed');
  const { status } = await admin(server.url, 'DELETE', `/admin/clips/${doomed.key}`);
  assert.equal(status, 204);
  assert.deepEqual(await atReader, { key: doomed.key });
  assert.deepEqual(await atAuthor, { key: doomed.key });
  assert.deepEqual(await replayKeys(server.url), [kept.key]);
  assert.equal((await fetchGif(server.url, doomed.clip)).response.status, 404);
  assert.equal((await fetchGif(server.url, kept.clip)).response.status, 200);
  assert.equal(await clipsStored(server.url), 1);

  assert.equal((await admin(server.url, 'DELETE', `/admin/clips/${doomed.key}`)).status, 404, 'already gone');
  assert.equal((await admin(server.url, 'DELETE', `/admin/clips/${SOME_KEY}`)).status, 404, 'never there');
  assert.equal((await admin(server.url, 'DELETE', '/admin/clips/not-a-key')).status, 404, 'not a key');
  assert.match(server.output(), new RegExp(`action="delete_clip".*${doomed.key}|${doomed.key}.*delete_clip`), 'the action is logged');
  assert.doesNotMatch(server.output(), new RegExp(ADMIN), 'without the token');
});

e2e('a ban refuses clips and live frames, purge removes the clips, it survives a restart and DELETE lifts it', async (t, h) => {
  const first = await h.server({ args: ['--admin-token', ADMIN] });
  const troll = await h.client(first.url, { name: 'troll', token: token(3) });
  const reader = await h.client(first.url, { name: 'reader', token: token(4) });
  const trollClips = [];
  for (let i = 0; i < 2; i += 1) trollClips.push(await sendGoodClip(troll.socket, { message: `spam ${i}`, frames: [FRAMES[i]] }));
  const innocent = await sendGoodClip(reader.socket, { message: 'hello', frames: [FRAMES[3]] });
  const user = troll.welcome.you.id;

  const removed = [];
  reader.socket.on('message:removed', ({ key }) => removed.push(key));
  const asked = Date.now();
  const ban = await admin(first.url, 'POST', '/admin/bans', { body: { user, minutes: 60, reason: 'spam', purge: true } });
  const answered = Date.now();
  assert.equal(ban.status, 201);
  assert.equal(ban.json.user, user);
  assert.equal(ban.json.purged, 2);
  // 60 minutes from when the server took the request, which was between asking and the answer.
  assert.ok(ban.json.until >= asked + 60 * 60_000 && ban.json.until <= answered + 60 * 60_000, `until ${ban.json.until}: 60 min after ${asked}..${answered}`);
  await eventually(() => removed.length === 2, 'message:removed for both purged clips');
  assert.deepEqual(removed.sort(), trollClips.map((c) => c.key).sort());
  assert.deepEqual(await replayKeys(first.url), [innocent.key], 'purge removed only their clips');

  const refused = await sendClip(troll.socket, { message: 'again', frames: [FRAMES[0]] });
  assert.equal(refused.reply.error?.code, 'banned');

  // Live frames are dropped with live:error banned, and nobody sees them.
  await troll.socket.timeout(WAIT_MS).emitWithAck('live:join');
  await reader.socket.timeout(WAIT_MS).emitWithAck('live:join');
  const liveError = once(troll.socket, 'live:error');
  troll.socket.emit('live:frame', FRAMES[0]);
  assert.equal((await liveError).code, 'banned');
  await expectNoEvent(reader.socket, 'live:frame');

  const listed = await admin(first.url, 'GET', '/admin/bans');
  assert.deepEqual(listed.json, [{ user, until: ban.json.until, reason: 'spam', address: false }]);

  // Kept in the store: a restart does not lift it.
  troll.close();
  reader.close();
  await first.stop();
  const second = await h.server({ dataDir: first.dataDir, args: ['--admin-token', ADMIN] });
  const trollAgain = await h.client(second.url, { name: 'troll', token: token(3) });
  assert.equal(trollAgain.welcome.you.id, user);
  assert.equal((await sendClip(trollAgain.socket, { message: 'after restart', frames: [FRAMES[0]] })).reply.error?.code, 'banned');
  assert.deepEqual((await admin(second.url, 'GET', '/admin/bans')).json.map((b) => b.user), [user]);

  assert.equal((await admin(second.url, 'DELETE', `/admin/bans/${user}`)).status, 204);
  assert.equal((await admin(second.url, 'DELETE', `/admin/bans/${user}`)).status, 404, 'no ban to lift twice');
  assert.deepEqual((await admin(second.url, 'GET', '/admin/bans')).json, []);
  const welcomeBack = await sendGoodClip(trollAgain.socket, { message: 'sorry', frames: [FRAMES[2]] });
  assert.equal(welcomeBack.author.id, user, 'clips go through once the ban is lifted');
});

e2e('report: counted once per user, listed most reported first; unknown or bad keys are refused', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN] });
  const author = await h.client(server.url, { name: 'author', token: token(5) });
  const readers = await Promise.all([6, 7].map((seed) => h.client(server.url, { name: `reader-${seed}`, token: token(seed) })));
  const reportedOnce = await sendGoodClip(author.socket, { message: 'reported once', frames: [FRAMES[0]] });
  const twice = await sendGoodClip(author.socket, { message: 'reported twice', frames: [FRAMES[1]] });
  await sendGoodClip(author.socket, { message: 'never reported', frames: [FRAMES[2]] });

  const report = (client, key) => client.socket.timeout(WAIT_MS).emitWithAck('report', { key });
  assert.deepEqual(await report(readers[0], reportedOnce.key), { ok: true });
  assert.deepEqual(await report(readers[0], reportedOnce.key), { ok: true }, 'a repeat is fine');
  assert.deepEqual(await report(readers[0], twice.key), { ok: true });
  assert.deepEqual(await report(readers[1], twice.key), { ok: true });
  // The same user in another tab is still one report.
  const secondTab = await h.client(server.url, { name: 'reader-7', token: token(7) });
  assert.deepEqual(await report(secondTab, twice.key), { ok: true });

  const unknown = await report(readers[0], SOME_KEY);
  assert.equal(unknown.ok, false);
  assert.equal(unknown.error.code, 'not_found');
  for (const bad of [{ key: 'nope' }, { key: 5 }, 'just text', null]) {
    const reply = await readers[1].socket.timeout(WAIT_MS).emitWithAck('report', bad);
    assert.equal(reply.error?.code, 'invalid_payload', JSON.stringify(bad));
  }

  const { status, json } = await admin(server.url, 'GET', '/admin/reports');
  assert.equal(status, 200);
  assert.deepEqual(json.map(({ key, reports }) => ({ key, reports })), [
    { key: twice.key, reports: 2 },
    { key: reportedOnce.key, reports: 1 },
  ]);
  assert.deepEqual(json[0].clip, twice, 'each entry carries its Clip');

  // A deleted clip takes its reports with it.
  assert.equal((await admin(server.url, 'DELETE', `/admin/clips/${twice.key}`)).status, 204);
  assert.deepEqual((await admin(server.url, 'GET', '/admin/reports')).json.map((r) => r.key), [reportedOnce.key]);
});

e2e('GET /admin/clips: the newest unexpired clips, newest first, with their reports; limit 1 to 200, default 50', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN] });
  const author = await h.client(server.url, { name: 'author', token: token(8) });
  const reader = await h.client(server.url, { name: 'reader', token: token(9) });
  const other = await h.client(server.url, { name: 'other', token: token(10) });
  const sent = [];
  for (let i = 0; i < 4; i += 1) sent.push(await sendGoodClip(author.socket, { message: `clip ${i}`, frames: [FRAMES[i]] }));
  for (const client of [reader, other]) {
    assert.deepEqual(await client.socket.timeout(WAIT_MS).emitWithAck('report', { key: sent[1].key }), { ok: true });
  }
  assert.deepEqual(await reader.socket.timeout(WAIT_MS).emitWithAck('report', { key: sent[3].key }), { ok: true });

  const all = await admin(server.url, 'GET', '/admin/clips');
  assert.equal(all.status, 200);
  assert.deepEqual(all.json.map(({ key, reports }) => ({ key, reports })), [
    { key: sent[3].key, reports: 1 },
    { key: sent[2].key, reports: 0 },
    { key: sent[1].key, reports: 2 },
    { key: sent[0].key, reports: 0 },
  ], 'newest first, each with its report count');
  assert.deepEqual(all.json.map((entry) => entry.clip), [...sent].reverse(), 'each entry carries its Clip');

  assert.deepEqual((await admin(server.url, 'GET', '/admin/clips?limit=2')).json.map((entry) => entry.key), [sent[3].key, sent[2].key]);
  assert.deepEqual((await admin(server.url, 'GET', '/admin/clips?limit=1')).json.map((entry) => entry.key), [sent[3].key]);
  assert.equal((await admin(server.url, 'GET', '/admin/clips?limit=200')).json.length, 4);

  // A removed clip is not listed.
  assert.equal((await admin(server.url, 'DELETE', `/admin/clips/${sent[3].key}`)).status, 204);
  assert.deepEqual((await admin(server.url, 'GET', '/admin/clips')).json.map((entry) => entry.key), [sent[2].key, sent[1].key, sent[0].key]);

  for (const query of ['limit=0', 'limit=201', 'limit=-1', 'limit=1.5', 'limit=ten', 'limit=', 'limit=99999999999999999999999']) {
    const { status, json } = await admin(server.url, 'GET', `/admin/clips?${query}`);
    assert.equal(status, 400, query);
    assert.match(json.error, /`limit` must be a whole number from 1 to 200/, `${query}: ${json.error}`);
  }
  for (const query of ['limt=5', 'limit=5&limit=6', 'limit=5&user=x']) {
    const { status, json } = await admin(server.url, 'GET', `/admin/clips?${query}`);
    assert.equal(status, 400, query);
    assert.match(json.error, /only query parameter is `limit`/, `${query}: ${json.error}`);
  }
});

e2e('GET /admin/clips lists 50 unless asked for more', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN] });
  // Five clips a socket fit in one burst of the rate limit; one socket sends one at a time.
  const authors = await Promise.all(Array.from({ length: 11 }, (_, i) => h.client(server.url, { name: `author-${i}`, token: token(20 + i) })));
  const sent = (await Promise.all(authors.map(async (author, a) => {
    const clips = [];
    for (let i = a; i < 52; i += authors.length) clips.push(await sendGoodClip(author.socket, { message: `${i}`, frames: [FRAMES[i % FRAMES.length]] }));
    return clips;
  }))).flat();
  assert.equal(sent.length, 52);
  // Keys are UUIDv7: their order is the order the server made the clips in.
  const newestFirst = sent.map((clip) => clip.key).sort().reverse();
  const listed = async (query) => (await admin(server.url, 'GET', `/admin/clips${query}`)).json.map((entry) => entry.key);
  assert.deepEqual(await listed(''), newestFirst.slice(0, 50), 'the 50 newest, newest first');
  assert.deepEqual(await listed('?limit=51'), newestFirst.slice(0, 51));
  assert.deepEqual(await listed('?limit=200'), newestFirst, 'all 52');
});

e2e('GET /admin/clips never lists an expired clip, swept or not', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN, '--clip-ttl', '3s', '--sweep-every', '1h'] });
  const author = await h.client(server.url, { name: 'author', token: token(12) });
  await sendGoodClip(author.socket, { message: 'short-lived', frames: [FRAMES[0]] });
  await eventually(async () => (await admin(server.url, 'GET', '/admin/clips')).json.length === 0, 'the clip to expire', 20_000, 250);
  assert.equal(await clipsStored(server.url), 1, 'still stored: the sweep is an hour away');
});

e2e('reports are rate limited like clips', async (t, h) => {
  const server = await h.server();
  const author = await h.client(server.url, { name: 'author' });
  const clip = await sendGoodClip(author.socket, { message: 'x', frames: [FRAMES[0]] });
  const reader = await h.client(server.url, { name: 'flooder' });
  const replies = await Promise.all(Array.from({ length: 8 }, () => reader.socket.timeout(WAIT_MS).emitWithAck('report', { key: clip.key })));
  assert.equal(replies.filter((r) => r.ok).length, 5, 'a burst of five');
  assert.ok(replies.filter((r) => !r.ok).every((r) => r.error.code === 'rate_limited'));
});
