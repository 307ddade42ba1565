// A ban ends a call in progress (SPEC §10): the banned page says so in words, lets go of
// camera and microphone and stays out; the other page loses its tile and its connection
// to the banned one, which is what stops the picture and the sound (they go peer to peer).
import assert from 'node:assert/strict';
import { admin } from '../browser/browser.mjs';
import { callTest, joinAsClient, newRoom, openInCall, tileOf } from './call.mjs';

const ADMIN = 'call-ban-suite-admin-token';

callTest('a ban ends the banned page\'s call: it says until when and lets go; the other loses its tile', async (t, b) => {
  const url = await b.startCall(['--admin-token', ADMIN]);
  const room = await newRoom(url);
  const [host, troll] = await openInCall(b, room, ['host', 'troll']);

  const user = await troll.evaluate(() => window.loopchat.call.you.user);
  assert.equal((await admin(url, ADMIN, 'POST', '/admin/bans', { user, minutes: 30 })).status, 201);

  await troll.locator('#call-notice', { hasText: /^A moderator has blocked you from calls until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.$/ }).waitFor();
  assert.match(await troll.locator('#call-status').textContent(), /not in the call/);
  assert.equal(await troll.locator('#rejoin').isVisible(), true);
  assert.equal(await troll.locator('#leave').isVisible(), false);
  assert.equal(await troll.locator('#call-tiles li.call-tile:not(.mine)').count(), 0);
  assert.equal(await troll.locator('#call-empty').isVisible(), false, 'not "nobody else is here"');
  assert.deepEqual(await troll.evaluate(() => [window.loopchat.media.audio, window.loopchat.media.video, window.loopchat.call.peers.size]), [null, null, 0], 'camera, microphone and connection let go');

  await tileOf(host, 'troll').waitFor({ state: 'detached' });
  await host.waitForFunction(() => window.loopchat.call.peers.size === 0);
  assert.equal(await host.evaluate(() => window.loopchat.call.joined), true, 'the host stays in the call');

  // "Join again" is refused while the ban lasts, in the same words. The button and the
  // notice are already on the page from the ban, so what is checked is the click's own
  // round trip, read off the page's connection: the `call:join` it sends and the server's
  // answer to that very packet (its ack id), then the notice the page makes of that answer
  // (cleared by the click first, so it cannot be the ban's notice left standing).
  await recordWire(troll);
  await recordWire(host);
  await troll.evaluate(() => {
    const notice = document.getElementById('call-notice');
    window.noticeChanges = [];
    new MutationObserver(() => window.noticeChanges.push(notice.hidden ? null : notice.textContent))
      .observe(notice, { attributes: true, childList: true, characterData: true, subtree: true });
  });
  await troll.click('#rejoin');
  const { join, answer } = await troll.waitForFunction(() => {
    const join = window.wire.out.map((data) => data.match(/^2(\d+)\["call:join",/)).find(Boolean);
    const answer = join && window.wire.in.find((data) => data.startsWith(`3${join[1]}[`));
    return answer && { join: join.input, answer: JSON.parse(answer.slice(1 + join[1].length))[0] };
  }).then((handle) => handle.jsonValue());
  assert.equal(callJoins(await troll.evaluate(() => window.wire.out)), 1, `the click sent one call:join: ${join}`);
  assert.equal(answer.ok, false, `the server refused the rejoin: ${JSON.stringify(answer)}`);
  assert.equal(answer.error.code, 'banned');
  assert.match(answer.error.message, /^a moderator has blocked you from calls until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  const words = `${answer.error.message[0].toUpperCase()}${answer.error.message.slice(1)}.`;
  await troll.locator('#rejoin').waitFor();
  await troll.waitForFunction((expected) => window.noticeChanges.at(-1) === expected, words);
  const changes = await troll.evaluate(() => window.noticeChanges);
  assert.ok(changes.slice(0, -1).includes(null), `the click cleared the ban's notice before the answer came: ${JSON.stringify(changes)}`);
  assert.match(await troll.locator('#call-status').textContent(), /not in the call/);
  assert.equal(await troll.evaluate(() => window.loopchat.call.joined), false);

  // Nobody in the call heard of the refused one. A marker joins after the refusal was
  // answered: a `call:joined` for the troll would have reached the host before the marker's.
  const { client: marker, reply } = await joinAsClient(url, room, 'marker');
  b.clients.push(marker);
  assert.equal(reply.ok, true, JSON.stringify(reply));
  await host.waitForFunction((id) => window.wire.in.some((data) => data.startsWith('2["call:joined",') && data.includes(`"id":"${id}"`)), marker.welcome.you.conn);
  const heard = (await host.evaluate(() => window.wire.in)).filter((data) => data.startsWith('2["call:joined",'));
  assert.deepEqual(heard.map((data) => JSON.parse(data.slice(1))[1].name), ['marker'], 'the host heard of the marker only');
  assert.equal(await tileOf(host, 'troll').count(), 0);
});

/**
 * Records, from now on, the Socket.IO packets `page`'s connection sends and receives, as
 * Engine.IO hands them over (the wire's text after its `4`: `2["event",…]`, `2<id>[…]` with an
 * ack id, `3<id>[…]` for the answer to it), in `window.wire.out` and `window.wire.in`.
 */
async function recordWire(page) {
  await page.evaluate(() => {
    const engine = window.loopchat.socket.io.engine;
    const wire = { out: [], in: [] };
    window.wire = wire;
    engine.on('packetCreate', (packet) => { if (packet.type === 'message') wire.out.push(packet.data); });
    engine.on('packet', (packet) => { if (packet.type === 'message') wire.in.push(packet.data); });
  });
}

/** How many `call:join` packets are in `out` (as `window.wire.out` records them). */
const callJoins = (out) => out.filter((data) => /^2\d*\["call:join",/.test(data)).length;
