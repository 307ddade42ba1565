// SPEC §10: every moderation action is logged at `info`, with the action and its target,
// never the token. moderation.test.mjs reads the log for a deleted clip only; here the ban
// and the lift of a ban are found in the server's output (stdout and stderr, as an operator
// reads it), one line each, and checked to carry none of the secrets the server holds: the
// admin token, the id secret, and the banned browser's identity token.
import assert from 'node:assert/strict';
import { e2e, eventually } from './helpers.mjs';

const ADMIN = 'moderation-log-suite-admin-token';
const ID_SECRET = 'moderation-log-suite-id-secret-5b1e';
const BROWSER_TOKEN = Buffer.alloc(32, 42).toString('base64url');
const REASON = 'flooding the chat';

async function admin(url, method, path, { body, auth = ADMIN } = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${auth}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

/** The lines of `server`'s output that record the moderation action `action`. */
const actionLines = (server, action) => server.output().split('\n').filter((line) => line.includes(`action="${action}"`));

e2e('a ban and its lifting are logged at info, one line each, naming the user and until when, with no secret', async (t, h) => {
  const server = await h.server({ args: ['--admin-token', ADMIN, '--id-secret', ID_SECRET] });
  const troll = await h.client(server.url, { name: 'troll', token: BROWSER_TOKEN });
  const user = troll.welcome.you.id;

  // A request with the wrong token does nothing, and so logs no action: the real ban just
  // after it is the marker that its line would have come by then.
  assert.equal((await admin(server.url, 'POST', '/admin/bans', { body: { user, minutes: 30 }, auth: `${ADMIN}-wrong` })).status, 401);
  const banned = await admin(server.url, 'POST', '/admin/bans', { body: { user, minutes: 30, reason: REASON } });
  assert.equal(banned.status, 201);
  await eventually(() => actionLines(server, 'ban').length > 0, 'the ban in the log');
  const [ban, ...moreBans] = actionLines(server, 'ban');
  assert.deepEqual(moreBans, [], 'one line for one ban (none for the refused request)');
  assert.match(ban, /\bINFO\b/, `logged at info: ${ban}`);
  assert.match(ban, /\bmoderation\b/, ban);
  assert.ok(ban.includes(`user=${user}`), `the line names the banned user: ${ban}`);
  const until = new Date(banned.json.until).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  assert.ok(ban.includes(`until=${until}`), `the line says until when (${until}): ${ban}`);
  assert.match(ban, /\bpurged=0\b/, ban);

  const lifted = await admin(server.url, 'DELETE', `/admin/bans/${user}`);
  assert.equal(lifted.status, 204);
  await eventually(() => actionLines(server, 'lift_ban').length > 0, 'the lifted ban in the log');
  const [lift, ...moreLifts] = actionLines(server, 'lift_ban');
  assert.deepEqual(moreLifts, []);
  assert.match(lift, /\bINFO\b/, lift);
  assert.ok(lift.includes(`user=${user}`), `the line names the user: ${lift}`);

  // Lifting it again is a 404, not an action: no second line (the marker is the first).
  assert.equal((await admin(server.url, 'DELETE', `/admin/bans/${user}`)).status, 404);
  const marker = await admin(server.url, 'POST', '/admin/bans', { body: { user, minutes: 1 } });
  assert.equal(marker.status, 201);
  await eventually(() => actionLines(server, 'ban').length === 2, 'the marker ban in the log');
  assert.equal(actionLines(server, 'lift_ban').length, 1, 'a lift of no ban is not logged as one');

  // No secret anywhere in what the server printed, these lines included.
  const output = server.output();
  for (const [what, secret] of [['the admin token', ADMIN], ['the id secret', ID_SECRET], ['the browser token', BROWSER_TOKEN]]) {
    assert.ok(!output.includes(secret), `${what} is in no log line`);
  }
  t.diagnostic(`ban: ${ban.replace(/^\[\w+\] \S+ /, '')}`);
  t.diagnostic(`lift: ${lift.replace(/^\[\w+\] \S+ /, '')}`);
});
