// Screenshots of the call page, desktop and phone, light and dark, saved to test-artifacts/
// for a person to look at. The assertions only check that the page laid out without
// sideways overflow and that its controls have names.
import assert from 'node:assert/strict';
import { DESKTOP, PHONE, screenshot } from '../browser/browser.mjs';
import { callTest, framesFrom, inCall, newRoom } from './call.mjs';

async function assertNoHorizontalOverflow(page) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client, `${page.label}: page is ${scroll}px wide in a ${client}px window`);
}

/** Every visible button and link has an accessible name (its text or aria-label). */
async function assertNamedControls(page) {
  const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, a[href], select, input')]
    .filter((element) => element.checkVisibility())
    .filter((element) => !(element.getAttribute('aria-label') || element.textContent.trim() || element.labels?.length))
    .map((element) => element.outerHTML.slice(0, 120)));
  assert.deepEqual(unnamed, [], `${page.label}: controls without a name`);
}

callTest('screenshots of the call page', async (t, b) => {
  const url = await b.startCall();
  const room = await newRoom(url);
  // Granting replaces the context's permissions: camera and microphone are granted again.
  const clipboard = (context) => context.grantPermissions(['camera', 'microphone', 'clipboard-read', 'clipboard-write']);
  const desktop = await b.open(room, { name: 'Grace Hopper', viewport: DESKTOP, label: 'desktop', prepare: clipboard });
  const phone = await b.open(room, { name: 'linus', viewport: PHONE, label: 'phone' });
  await Promise.all([inCall(desktop), inCall(phone)]);
  await Promise.all([framesFrom(desktop, ['linus']), framesFrom(phone, ['Grace Hopper'])]);

  // The phone mutes; the desktop snaps, so both show the strip.
  await phone.click('#mic');
  await desktop.locator('#call-tiles li.call-tile:not(.mine)[data-mic="off"]').waitFor();
  await desktop.click('#snap');
  for (const page of [desktop, phone]) {
    await page.locator('#snap-strip li.snap').waitFor();
    await page.waitForFunction(() => [...document.images].every((img) => img.complete));
  }

  for (const [page, size] of [[desktop, 'desktop'], [phone, 'phone']]) {
    await assertNoHorizontalOverflow(page);
    await assertNamedControls(page);
    await screenshot(page, `call-${size}`);
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, `call-${size}-dark`);
    await page.emulateMedia({ colorScheme: 'light' });
  }

  // The invite link is the call's own address, on the clipboard.
  await desktop.click('#copy-link');
  await desktop.locator('#copy-link', { hasText: 'Link copied' }).waitFor();
  assert.equal(await desktop.evaluate(() => navigator.clipboard.readText()), new URL(room, url).href);

  // The desktop turns its camera off: its own tile and the phone's tile of it show the
  // identicon instead.
  await desktop.click('#camera');
  await phone.locator('#call-tiles li.call-tile:not(.mine)[data-camera="off"]').waitFor();
  await screenshot(phone, 'call-phone-camera-off');
  await screenshot(desktop, 'call-desktop-camera-off');
});
