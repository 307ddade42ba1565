// Two pages in one call (SPEC §9): sound and picture both ways, the muted-mic badge and
// "camera off" on the other side, a Socket.IO reconnect that the call survives, and Leave.
import assert from 'node:assert/strict';
import {
  CONNECT_MS, assertFlowing, callTest, costMeter, framesFrom, newRoom, openInCall, tileOf,
} from './call.mjs';

callTest('two pages see and hear each other; mute, camera off, a reconnect and leave show on the other side', async (t, b) => {
  const meter = costMeter();
  const url = await b.startCall();
  const room = await newRoom(url);
  const [ada, bob] = await openInCall(b, room, ['ada', 'bob']);
  meter.mark('all frames flowing');
  await assertFlowing([{ page: ada, from: ['bob'] }, { page: bob, from: ['ada'] }]);
  meter.report(t, 'a 2-page call');
  assert.equal(await tileOf(ada, 'bob').getAttribute('data-connection'), 'connected');
  assert.equal(await tileOf(bob, 'ada').getAttribute('data-mic'), 'on');
  assert.equal(await tileOf(bob, 'ada').locator('.call-badge').isVisible(), false);

  // Muting the microphone: bob sees the badge, and the tile says so in words.
  await ada.click('#mic');
  await ada.locator('#mic[aria-label="Unmute your microphone"]').waitFor();
  const adaOnBob = tileOf(bob, 'ada');
  await bob.locator('#call-tiles li.call-tile:not(.mine)[data-mic="off"]').waitFor();
  assert.equal(await adaOnBob.locator('.call-badge').isVisible(), true);
  assert.equal(await adaOnBob.locator('.call-badge').getAttribute('aria-label'), 'ada’s microphone is off');
  assert.match(await adaOnBob.locator('.call-state').textContent(), /muted/);

  // Camera off: her picture gives way to her identicon on bob's page, and her camera stops.
  await ada.click('#camera');
  await ada.locator('#camera[aria-label="Turn your camera on"]').waitFor();
  await bob.locator('#call-tiles li.call-tile:not(.mine)[data-camera="off"]').waitFor();
  assert.equal(await adaOnBob.locator('.call-avatar svg.identicon').isVisible(), true);
  assert.equal(await adaOnBob.locator('video').isVisible(), false);
  assert.equal(await ada.evaluate(() => window.loopchat.media.video), null, 'the camera track is stopped');
  assert.equal(await ada.locator('#snap').isDisabled(), true, 'no camera, nothing to snap');

  // Back on, unmuted: her picture flows to bob again on the same connection.
  await ada.click('#camera');
  await ada.click('#mic');
  await bob.locator('#call-tiles li.call-tile:not(.mine)[data-camera="on"][data-mic="on"]').waitFor();
  await assertFlowing([{ page: bob, from: ['ada'] }]);

  // A lost Socket.IO transport: ada reconnects as a new connection, joins again and offers;
  // bob drops her old tile and connects to the new one.
  const before = await adaOnBob.getAttribute('data-id');
  await ada.evaluate(() => window.loopchat.socket.io.engine.close());
  await bob.waitForFunction((old) => {
    const tiles = [...document.querySelectorAll('#call-tiles li.call-tile:not(.mine)')];
    return tiles.length === 1 && tiles[0].dataset.id !== old && tiles[0].dataset.connection === 'connected';
  }, before, { timeout: CONNECT_MS });
  await Promise.all([framesFrom(ada, ['bob']), framesFrom(bob, ['ada'])]);
  await assertFlowing([{ page: ada, from: ['bob'] }, { page: bob, from: ['ada'] }]);

  // Leave: her tile goes from bob's page, and she sees nobody.
  await ada.click('#leave');
  await ada.locator('#rejoin:visible').waitFor();
  await tileOf(bob, 'ada').waitFor({ state: 'detached' });
  assert.equal(await bob.locator('#call-empty').isVisible(), true);
  assert.equal(await ada.locator('#call-tiles li.call-tile:not(.mine)').count(), 0);
  assert.match(await ada.locator('#call-status').textContent(), /left the call/);
  assert.deepEqual(await ada.evaluate(() => [window.loopchat.media.audio, window.loopchat.media.video]), [null, null], 'leaving releases camera and microphone');

  // And back.
  await ada.click('#rejoin');
  await Promise.all([framesFrom(ada, ['bob']), framesFrom(bob, ['ada'])]);
  for (const page of [ada, bob]) assert.deepEqual(page.problems, [], `${page.label}: ${page.problems}`);
});
