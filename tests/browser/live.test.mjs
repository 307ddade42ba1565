// The live room page (SPEC §3, §7) in headless Chromium with a fake camera.
import assert from 'node:assert/strict';
import { RESTART_WAIT_MS, browserTest, connected } from './browser.mjs';

/** Waits until the page has joined the room (the join reply enables "Go live"). */
async function joined(page) {
  await connected(page);
  await page.locator('#go-live:enabled').waitFor();
}

async function goLive(page) {
  await page.click('#go-live');
  await page.locator('#stop:visible').waitFor();
}

function tile(page, name) {
  return page.locator('#tiles li.tile', { has: page.locator('.tile-name', { hasText: new RegExp(`^${name}$`) }) });
}

/** Waits until `name`'s tile on `page` shows a picture, then until the picture changes. */
async function seesStreaming(page, name) {
  const picture = tile(page, name).locator('img.tile-picture');
  await picture.waitFor({ state: 'visible' });
  const first = await picture.getAttribute('src');
  assert.match(first, /^blob:/);
  await page.waitForFunction(
    ([img, before]) => img.getAttribute('src') !== before && img.complete && img.naturalWidth > 0,
    [await picture.elementHandle(), first],
  );
  assert.equal(await picture.evaluate((img) => img.naturalWidth), 320);
  assert.equal(await tile(page, name).getAttribute('data-state'), 'live');
}

browserTest('streamers see each other, a watcher sees both, and a closed page leaves', async (t, b) => {
  await b.start();
  const one = await b.open('/live', { name: 'one' });
  const two = await b.open('/live', { name: 'two' });
  const watcher = await b.open('/live', { name: 'watcher', camera: 'denied' });
  for (const page of [one, two, watcher]) await joined(page);

  await goLive(one);
  await goLive(two);

  await seesStreaming(one, 'two');
  await seesStreaming(two, 'one');
  await seesStreaming(watcher, 'one');
  await seesStreaming(watcher, 'two');
  assert.equal(await tile(one, 'watcher').getAttribute('data-state'), 'watching', 'a watcher has a tile without a picture');
  assert.equal(await tile(watcher, 'watcher \\(you\\)').count(), 1, 'everyone has their own tile');
  assert.equal(await watcher.locator('#live-notice').isHidden(), true, 'watching needs no camera and no apology');

  await two.close();
  await tile(watcher, 'two').waitFor({ state: 'detached' });
  await tile(one, 'two').waitFor({ state: 'detached' });
  assert.equal(await tile(watcher, 'one').count(), 1);
});

browserTest('stopping takes your picture away from the others and keeps you watching', async (t, b) => {
  await b.start();
  const streamer = await b.open('/live', { name: 'streamer' });
  const viewer = await b.open('/live', { name: 'viewer' });
  await joined(streamer);
  await joined(viewer);
  await goLive(streamer);
  await goLive(viewer);
  await seesStreaming(viewer, 'streamer');

  await streamer.click('#stop');
  await streamer.locator('#go-live:visible').waitFor();
  await viewer.waitForFunction(() => {
    const tile = [...document.querySelectorAll('#tiles li.tile')]
      .find((item) => item.querySelector('.tile-name').textContent === 'streamer');
    return tile && tile.dataset.state === 'watching';
  });
  // Still in the room, so still watching the viewer.
  await seesStreaming(streamer, 'viewer');
});

browserTest('after a server restart a streamer is back on the watcher\'s page by itself', async (t, b) => {
  await b.start();
  const streamer = await b.open('/live', { name: 'streamer' });
  const watcher = await b.open('/live', { name: 'watcher', camera: 'denied' });
  await joined(streamer);
  await joined(watcher);
  await goLive(streamer);
  await seesStreaming(watcher, 'streamer');
  const before = await tile(watcher, 'streamer').getAttribute('data-id');

  await b.restartServer();

  // Both pages join the new server's room again and the streamer keeps streaming: its one
  // tile is now its new connection's (the old one goes when the watcher rejoins), live,
  // and its picture keeps changing.
  await watcher.waitForFunction((old) => {
    const tiles = [...document.querySelectorAll('#tiles li.tile')]
      .filter((item) => item.querySelector('.tile-name').textContent === 'streamer');
    return tiles.length === 1 && tiles[0].dataset.id !== old && tiles[0].dataset.state === 'live';
  }, before, { timeout: RESTART_WAIT_MS });
  await seesStreaming(watcher, 'streamer');
  assert.equal(await streamer.locator('#stop:visible').count(), 1, 'the streamer is still live');
});

browserTest('without a camera, going live explains why and the page keeps watching', async (t, b) => {
  await b.start();
  const streamer = await b.open('/live', { name: 'streamer' });
  const refused = await b.open('/live', { name: 'refused', camera: 'denied' });
  await joined(streamer);
  await joined(refused);
  await goLive(streamer);

  await refused.click('#go-live');
  const notice = refused.locator('#live-notice');
  await notice.waitFor();
  assert.match(await notice.textContent(), /blocked.*keep watching/s);
  assert.equal(await refused.isVisible('#go-live'), true);
  await seesStreaming(refused, 'streamer');
});

browserTest('a join that goes unanswered is asked again, and the page joins', async (t, b) => {
  await b.start();
  const streamer = await b.open('/live', { name: 'streamer' });
  await joined(streamer);
  await goLive(streamer);

  // The watcher's first live:join never reaches the server, as if it were lost in a busy
  // server's queue: over long-polling it is a POST, over a WebSocket a message.
  let dropped = 0;
  const isJoin = (text) => /^42\d*\["live:join"/.test(text);
  const dropFirstJoin = async (context) => {
    await context.route('**/socket.io/**', async (route) => {
      const body = route.request().postData() ?? '';
      if (dropped === 0 && body.split('\x1e').some(isJoin)) {
        dropped += 1;
        await route.fulfill({ status: 200, contentType: 'text/html', body: 'ok' });
      } else {
        await route.continue();
      }
    });
    await context.routeWebSocket('**/socket.io/**', (page) => {
      const server = page.connectToServer();
      page.onMessage((message) => {
        if (dropped === 0 && typeof message === 'string' && isJoin(message)) dropped += 1;
        else server.send(message);
      });
      server.onMessage((message) => page.send(message));
    });
  };
  const watcher = await b.open('/live', { name: 'watcher', camera: 'denied', prepare: dropFirstJoin });

  await watcher.locator('#live-status', { hasText: 'Trying again' }).waitFor({ timeout: RESTART_WAIT_MS });
  await joined(watcher);
  assert.equal(dropped, 1, 'the first join was dropped');
  await seesStreaming(watcher, 'streamer');
});
