// Joining without sending (SPEC §9): a browser with no camera and no microphone joins to
// watch and listen; a page whose camera and microphone are blocked says so in words, joins,
// and offers. (WEBRTC.md: inside the loopback-only namespace a page without media
// permission gathers no ICE candidate, so the blocked page is checked up to its offer.)
import assert from 'node:assert/strict';
import { expectNoEvent, roundTrip } from '../e2e/helpers.mjs';
import { screenshot, PHONE } from '../browser/browser.mjs';
import {
  CALL_ARGS, assertFlowing, callTest, framesFrom, inCall, joinAsClient, newRoom, once, tileOf,
} from './call.mjs';

callTest('a browser without camera or microphone joins to watch and listen, and the others see it is not sending', async (t, b) => {
  const url = await b.startCall();
  const room = await newRoom(url);
  const noDevices = await b.launch({ devices: false, chromiumArgs: CALL_ARGS });
  const ada = await b.open(room, { name: 'ada' });
  const viewer = await b.open(room, { name: 'viewer', browser: noDevices });
  await Promise.all([inCall(ada), inCall(viewer)]);

  const notice = viewer.locator('#call-notice');
  await notice.waitFor();
  assert.match(await notice.textContent(), /No camera or microphone could be started, so you joined to watch and listen only/);
  assert.deepEqual(await viewer.evaluate(() => [window.loopchat.media.audio, window.loopchat.media.video]), [null, null]);

  // The viewer receives ada's picture and sound over its receive-only transceivers.
  await framesFrom(viewer, ['ada']);
  await assertFlowing([{ page: viewer, from: ['ada'] }]);
  const directions = await viewer.evaluate(() => [...window.loopchat.call.peers.values()][0].pc.getTransceivers().map((tr) => `${tr.receiver.track.kind}:${tr.currentDirection}`));
  assert.deepEqual(directions.sort(), ['audio:recvonly', 'video:recvonly']);

  // Ada sees a tile for the viewer that says it sends neither, rather than a black picture.
  const viewerOnAda = tileOf(ada, 'viewer');
  await ada.locator('#call-tiles li.call-tile:not(.mine)[data-connection="connected"][data-camera="off"][data-mic="off"]').waitFor();
  assert.equal(await viewerOnAda.locator('.call-avatar svg.identicon').isVisible(), true);
  assert.equal(await viewerOnAda.locator('.call-badge').isVisible(), true);
  assert.equal(await viewer.locator('#snap').isDisabled(), true);
  assert.deepEqual(ada.problems, []);
});

callTest('a page whose camera and microphone are blocked explains it, joins, and makes its first offer', async (t, b) => {
  const url = await b.startCall();
  const room = await newRoom(url);
  // Someone already in the room, as a plain Socket.IO client: it sees the page join and
  // receives its offer.
  const { client, reply } = await joinAsClient(url, room, 'host');
  b.clients.push(client);
  assert.equal(reply.ok, true, JSON.stringify(reply));
  // Both waits start before the page is opened, so they cover a browser's launch too (a
  // fresh-clone run once took over 10 s to it): the same generous bound for both.
  const joined = once(client.socket, 'call:joined', 20_000);
  const offer = once(client.socket, 'call:signal', 20_000, (message) => message?.data?.description?.type === 'offer');

  const blocked = await b.open(room, { name: 'blocked', camera: 'denied', viewport: PHONE });
  await inCall(blocked);
  const notice = blocked.locator('#call-notice');
  await notice.waitFor();
  assert.match(await notice.textContent(), /camera and microphone are blocked for this site.*you still see and hear them.*allow them in your browser’s site settings/s);

  const { id, name } = await joined;
  assert.equal(name, 'blocked');
  const { from, data } = await offer;
  assert.equal(from, id);
  // Nothing to send, everything to receive, and the snapshot channel.
  const sections = Object.fromEntries(data.description.sdp.split(/\r\n(?=m=)/).slice(1)
    .map((section) => [section.slice(2, section.indexOf(' ')), section]));
  assert.deepEqual(Object.keys(sections), ['audio', 'video', 'application']);
  assert.match(sections.audio, /^a=recvonly$/m);
  assert.match(sections.video, /^a=recvonly$/m);
  assert.match(sections.application, /webrtc-datachannel/);
  assert.equal(await tileOf(blocked, 'host').count(), 1);

  // Now the page is one of those already there: it shows whoever comes next and waits for
  // their offer instead of making one (WEBRTC.md: crossed first offers left pairs stuck).
  const { client: late } = await joinAsClient(url, room, 'late');
  b.clients.push(late);
  await tileOf(blocked, 'late').waitFor();
  // Only a Peer offers, and the page has made none for the newcomer once its tile is up
  // (it makes one when the newcomer's offer comes); whatever it had sent the newcomer is
  // there after a round trip on the newcomer's connection.
  await expectNoEvent(late.socket, 'call:signal', async () => {
    assert.equal(await blocked.evaluate((id) => window.loopchat.call.peers.has(id), late.welcome.you.conn), false, 'no Peer for the newcomer before its offer');
    await roundTrip(late.socket);
  });

  // Asking for the camera again says, in words, that it is still blocked.
  await blocked.click('#camera');
  await notice.filter({ hasText: 'still blocked' }).waitFor();
  await screenshot(blocked, 'call-phone-blocked');
});

callTest('a page that joined without camera and microphone starts them later: they are negotiated and flow', async (t, b) => {
  const url = await b.startCall();
  const room = await newRoom(url);
  // Until the test says so, this page finds no camera and no microphone, as when both were
  // unplugged; then they are back.
  const unplugged = async (context) => {
    await context.addInitScript(() => {
      const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      window.unplugged = true;
      navigator.mediaDevices.getUserMedia = (constraints) => (window.unplugged
        ? Promise.reject(new DOMException('Requested device not found', 'NotFoundError'))
        : real(constraints));
    });
  };
  const late = await b.open(room, { name: 'late', prepare: unplugged });
  await inCall(late);
  await late.locator('#call-notice', { hasText: 'watch and listen only' }).waitFor();
  // Already there, so the polite side: its offers give way should they cross.
  const ada = await b.open(room, { name: 'ada' });
  await inCall(ada);
  await framesFrom(late, ['ada']);
  await ada.locator('#call-tiles li.call-tile:not(.mine)[data-connection="connected"][data-camera="off"][data-mic="off"]').waitFor();

  await late.evaluate(() => { window.unplugged = false; });
  await late.click('#camera');
  await late.click('#mic');
  await late.locator('#mic[aria-label="Mute your microphone"]').waitFor();
  // Its recvonly transceivers now send: that takes a new offer and answer on the same
  // connection, not a new connection.
  await ada.locator('#call-tiles li.call-tile:not(.mine)[data-camera="on"][data-mic="on"]').waitFor();
  await framesFrom(ada, ['late']);
  await assertFlowing([{ page: ada, from: ['late'] }, { page: late, from: ['ada'] }]);
  const negotiated = await late.evaluate(() => {
    const [peer] = window.loopchat.call.peers.values();
    return peer.pc.getTransceivers().map((tr) => `${tr.receiver.track.kind}:${tr.currentDirection}`).sort();
  });
  assert.deepEqual(negotiated, ['audio:sendrecv', 'video:sendrecv']);
  assert.equal(await late.locator('#call-notice').isVisible(), false, 'the notice went once both work');
  for (const page of [ada, late]) assert.deepEqual(page.problems, [], `${page.label}: ${page.problems}`);
});
