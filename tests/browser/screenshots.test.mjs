// Screenshots of both pages at desktop and phone widths, saved to test-artifacts/ for a
// person to look at. The assertions only check that each page laid out without overflow.
import assert from 'node:assert/strict';
import { loadFrames, sendGoodClip } from '../e2e/helpers.mjs';
import { DESKTOP, PHONE, browserTest, connected, screenshot } from './browser.mjs';

/** Fails if the page is wider than its window (sideways scrolling on a phone). */
async function assertNoHorizontalOverflow(page) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client, `page is ${scroll}px wide in a ${client}px window`);
}

browserTest('screenshots of the chat page', async (t, b) => {
  const url = await b.start();
  const writers = [await b.client(url, 'amber-otter'), await b.client(url, 'Grace Hopper')];
  const texts = [
    'good morning, loop people',
    '',
    'this one has a rather long message so that we can see how the text wraps beside the clip on a narrow phone screen',
    '<b>not bold</b> & not <i>italic</i>',
  ];
  for (const [index, message] of texts.entries()) {
    await sendGoodClip(writers[index % 2].socket, { message, frames: loadFrames() });
  }

  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const page = await b.open('/', { name: `me-${size}`, viewport });
    await connected(page);
    await page.locator('#text:enabled').waitFor();
    await page.fill('#text', `hi from the ${size}`);
    await page.press('#text', 'Enter');
    await page.locator('#clips li.clip.mine').waitFor();
    await page.locator('#text:enabled').waitFor();
    await page.waitForFunction(() => [...document.images].every((img) => img.complete));
    await assertNoHorizontalOverflow(page);
    await screenshot(page, `chat-${size}`);
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, `chat-${size}-dark`);
    await page.emulateMedia({ colorScheme: 'light' });

    await page.fill('#text', 'mid-recording');
    await page.press('#text', 'Enter');
    await page.waitForFunction(() => document.getElementById('progress').value >= 4);
    await screenshot(page, `chat-${size}-recording`);
    await page.locator('#text:enabled').waitFor();

    await page.click('#people-panel summary');
    await page.locator('#people li.person').first().waitFor();
    await assertNoHorizontalOverflow(page);
    await screenshot(page, `chat-${size}-people`);
    await page.click('#people-panel summary');
  }

  // The last page mutes one writer: the muted list, with the Undo.
  const reader = b.pages.at(-1);
  await reader.locator('#clips li.clip:not(.mine) .clip-mute').first().click();
  await reader.locator('#mute-undo:visible').waitFor();
  await screenshot(reader, 'chat-phone-muted');
  await reader.click('#mute-undo');

  const refused = await b.open('/', { name: 'no-camera', viewport: PHONE, camera: 'denied' });
  await connected(refused);
  await refused.locator('#camera-notice').waitFor();
  await screenshot(refused, 'chat-phone-no-camera');

  await b.server.stop();
  await refused.locator('#connection[data-state="lost"]').waitFor();
  await screenshot(refused, 'chat-phone-connection-lost');
});

browserTest('screenshots of the live room', async (t, b) => {
  await b.start();
  const streamers = [];
  for (const name of ['ada', 'linus']) {
    const page = await b.open('/live', { name });
    await connected(page);
    await page.locator('#go-live:enabled').waitFor();
    await page.click('#go-live');
    await page.locator('#stop:visible').waitFor();
    streamers.push(page);
  }
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const page = await b.open('/live', { name: `watcher-${size}`, viewport, camera: 'denied' });
    await connected(page);
    await page.waitForFunction(() => document.querySelectorAll('#tiles img.tile-picture:not([hidden])').length === 2);
    await page.waitForFunction(() => [...document.images].every((img) => img.complete));
    await assertNoHorizontalOverflow(page);
    await screenshot(page, `live-${size}`);
  }
  await screenshot(streamers[0], 'live-desktop-streaming');
  await streamers[0].emulateMedia({ colorScheme: 'dark' });
  await screenshot(streamers[0], 'live-desktop-streaming-dark');
});
