// A full call (SPEC §9, `--call-max`): the page says so in words and offers to try again,
// and holds no camera meanwhile. Its invite link can still be copied, by hand when the
// browser keeps the clipboard to itself.
import assert from 'node:assert/strict';
import { PHONE, WAIT_MS, screenshot } from '../browser/browser.mjs';
import { callTest, joinAsClient, newRoom, once } from './call.mjs';

callTest('a page that finds the call full says so and can try again', async (t, b) => {
  const url = await b.startCall(['--call-max', '2']);
  const room = await newRoom(url);
  for (const name of ['one', 'two']) {
    const { client, reply } = await joinAsClient(url, room, name);
    b.clients.push(client);
    assert.equal(reply.ok, true, JSON.stringify(reply));
  }

  // A browser that will not let the page write to the clipboard.
  const noClipboard = (context) => context.addInitScript(() => {
    navigator.clipboard.writeText = () => Promise.reject(new DOMException('Write permission denied.', 'NotAllowedError'));
  });
  const late = await b.open(room, { name: 'late', viewport: PHONE, prepare: noClipboard });
  const notice = late.locator('#call-notice');
  await notice.filter({ hasText: 'This call is full' }).waitFor();
  assert.match(await late.locator('#call-status').textContent(), /not in the call/);
  assert.equal(await late.locator('#rejoin').isVisible(), true);
  assert.equal(await late.locator('#leave').isVisible(), false);
  assert.deepEqual(await late.evaluate(() => [window.loopchat.media.audio, window.loopchat.media.video]), [null, null], 'a refused page releases camera and microphone');
  await screenshot(late, 'call-phone-room-full');

  // Without the clipboard, the invite link is shown selected, to copy by hand.
  await late.click('#copy-link');
  const field = late.locator('#invite-link');
  await field.waitFor();
  assert.equal(await field.inputValue(), new URL(room, url).href);
  assert.equal(await field.evaluate((input) => input.selectionStart === 0 && input.selectionEnd === input.value.length && document.activeElement === input), true);

  // Someone leaves; once the server has taken them out (the one still there is told),
  // "Join again" gets in.
  const [gone, stays] = b.clients;
  const left = once(stays.socket, 'call:left', WAIT_MS, (message) => message.id === gone.welcome.you.conn);
  gone.close();
  await left;
  await late.click('#rejoin');
  await late.waitForFunction(() => window.loopchat.call.joined === true);
  assert.equal(await late.locator('#call-notice').isVisible(), false);
  assert.equal(await late.locator('#call-tiles li.call-tile:not(.mine)').count(), 1, 'the one still there');
});
