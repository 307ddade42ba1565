// A ban ends a call in progress (SPEC §10): the banned page says so in words, lets go of
// camera and microphone and stays out; the other page loses its tile and its connection
// to the banned one, which is what stops the picture and the sound (they go peer to peer).
import assert from 'node:assert/strict';
import { admin } from '../browser/browser.mjs';
import { callTest, newRoom, openInCall, tileOf } from './call.mjs';

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

  // "Join again" is refused while the ban lasts, in the same words.
  await troll.click('#rejoin');
  await troll.locator('#rejoin').waitFor();
  assert.match(await troll.locator('#call-notice').textContent(), /^A moderator has blocked you from calls until/);
  assert.equal(await host.locator('#call-tiles li.call-tile:not(.mine)').count(), 0);
});
