// Clips as video on the pages (SPEC §7, §12), in headless Chromium: the feed plays each
// clip's MP4 in a <video> and falls back to the GIF where it must; clips move only on
// screen; one button holds them all, remembered; reduced motion starts them still; and the
// chat page lets go of the camera while it is hidden.
//
// The tests that need a clip's video skip, saying so, when the server gives clips none
// (`video` null): every other check still runs.
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { REPO_ROOT } from '../e2e/helpers.mjs';
import { removeDir, tempDir } from '../lib/cleanup.mjs';
import {
  PHONE, afterFrames, browserTest, clipFor, connected, readyToSend, sendClips, sendFromPage,
} from './browser.mjs';

/**
 * The `Clip` the server made of the clip with `key`, as a new client's replay has it;
 * with `all`, the whole replay.
 */
async function clipJson(b, key, { all = false } = {}) {
  const reader = await b.client(b.server.url, 'reader');
  const clip = reader.replay.find((candidate) => candidate.key === key);
  assert.ok(clip, `clip ${key} is in the replay`);
  return all ? reader.replay : clip;
}

/** What each clip of the page shows: `{ key, kind, paused, time, ready, motion, src }`. */
function mediaStates(page) {
  return page.$$eval('#clips li.clip', (items) => items.map((item) => {
    const media = item.querySelector('.clip-video, .clip-gif');
    const video = media?.matches('video') ? media : null;
    return {
      key: item.dataset.key,
      kind: video ? 'video' : media ? 'gif' : 'none',
      paused: video ? video.paused : null,
      time: video ? video.currentTime : null,
      ready: video ? video.readyState : null,
      motion: media?.dataset.motion ?? null,
      src: media ? media.getAttribute('src') : null,
    };
  }));
}

/** The clip `key`'s <video> on `page`. */
function videoOf(page, key) {
  return clipFor(page, key).locator('video.clip-video');
}

/** Waits until the video of clip `key` has played on from where it was (its time moved). */
async function untilPlaying(page, key) {
  const video = await videoOf(page, key).elementHandle();
  await page.waitForFunction((element) => element.readyState >= HTMLMediaElement.HAVE_FUTURE_DATA && !element.paused, video);
  const from = await video.evaluate((element) => element.currentTime);
  await page.waitForFunction(([element, start]) => element.currentTime !== start && !element.paused, [video, from]);
}

/** Waits until the video of clip `key` is paused, and checks that its time stands still. */
async function assertHeld(page, key, what) {
  const video = await videoOf(page, key).elementHandle();
  await page.waitForFunction((element) => element.paused, video);
  const before = await video.evaluate((element) => element.currentTime);
  await afterFrames(page);
  await page.waitForTimeout(300);
  const after = await video.evaluate((element) => [element.paused, element.currentTime]);
  assert.deepEqual(after, [true, before], `${what}: paused, its time stands still`);
}

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** A data dir from before clips had videos (tests/fixtures/store-before-video/README.md). */
const BEFORE_VIDEO = join(REPO_ROOT, 'tests/fixtures/store-before-video');

function uncaught(page) {
  return page.problems.filter((problem) => problem.startsWith('uncaught'));
}

function skipWithoutVideo(t, clip) {
  if (clip.video === null) {
    t.skip('this server gives clips no video yet (Clip.video is null): nothing to play');
    return true;
  }
  return false;
}

browserTest('a clip recorded on the page plays as a looping video there, for a newcomer and live elsewhere; Save GIF saves the GIF', async (t, b) => {
  await b.start();
  const alice = await b.open('/', { name: 'alice' });
  const bob = await b.open('/', { name: 'bob' });
  await readyToSend(alice);
  await connected(bob);
  const key = await sendFromPage(alice, 'a loop of me');
  const clip = await clipJson(b, key);
  if (skipWithoutVideo(t, clip)) return;
  assert.equal(clip.video, `/clips/${key}.mp4`);
  assert.equal(clip.poster, `/clips/${key}.jpg`);

  const newcomer = await b.open('/', { name: 'newcomer' });
  await clipFor(bob, key).waitFor();
  for (const page of [alice, bob, newcomer]) {
    const video = videoOf(page, key);
    await video.waitFor();
    assert.deepEqual(
      await video.evaluate((element) => ({
        src: element.getAttribute('src'),
        poster: element.getAttribute('poster'),
        muted: element.muted,
        loop: element.loop,
        playsInline: element.playsInline,
        autoplay: element.autoplay,
        label: element.getAttribute('aria-label'),
      })),
      {
        src: clip.video, poster: clip.poster, muted: true, loop: true, playsInline: true, autoplay: true,
        label: 'Looping clip from alice',
      },
      `${page.label}: the clip's <video>`,
    );
    await untilPlaying(page, key);
    assert.equal(await clipFor(page, key).locator('img.clip-gif').count(), 0, `${page.label}: no GIF beside the video`);
    assert.equal(await clipFor(page, key).locator('a.clip-save').getAttribute('href'), clip.clip, `${page.label}: Save GIF saves the GIF`);
  }
  // It loops: two seconds of video, and it plays on past them.
  const looped = await videoOf(newcomer, key).elementHandle();
  assert.ok(await looped.evaluate((element) => element.duration) > 1.5, 'about two seconds of video');
  await newcomer.waitForFunction((element) => {
    element.loopSeen ??= 0;
    if (element.currentTime < element.lastTime) element.loopSeen += 1;
    element.lastTime = element.currentTime;
    return element.loopSeen > 0;
  }, looped, { polling: 50, timeout: 10_000 });
  assert.deepEqual([alice, bob, newcomer].flatMap(uncaught), []);
});

browserTest('clips scrolled out of view are paused and play again in view', async (t, b) => {
  await b.start();
  const clips = await sendClips(b, 8);
  if (skipWithoutVideo(t, clips[0])) return;
  const page = await b.open('/', { name: 'scroller', viewport: PHONE });
  await connected(page);
  const [first, last] = [clips[0].key, clips.at(-1).key];
  // The page opens at the newest clip: the oldest is far above, out of view.
  await untilPlaying(page, last);
  await assertHeld(page, first, 'the oldest clip, out of view');

  await clipFor(page, first).evaluate((item) => item.scrollIntoView({ block: 'start' }));
  await untilPlaying(page, first);
  await assertHeld(page, last, 'the newest clip, now out of view');
});

browserTest('one button pauses and plays every clip, by keyboard, and is remembered on the next visit', async (t, b) => {
  await b.start();
  const clips = await sendClips(b, 3);
  if (skipWithoutVideo(t, clips[0])) return;
  const keys = clips.map((clip) => clip.key);
  // Tall enough that all four clips of this test are in view, so none is paused for being off screen.
  const page = await b.open('/', { name: 'stiller', viewport: { width: 1280, height: 1600 } });
  await connected(page);
  for (const key of keys) await untilPlaying(page, key);
  const button = page.locator('#motion');
  assert.equal(await button.textContent(), 'Pause clips');
  assert.equal(await button.getAttribute('aria-pressed'), 'false');

  await button.focus();
  await page.keyboard.press('Enter');
  assert.equal(await button.textContent(), 'Play clips');
  assert.equal(await button.getAttribute('aria-pressed'), 'true');
  for (const key of keys) await assertHeld(page, key, 'after Pause clips');
  // A held clip can be reached with the keyboard to play it on its own.
  assert.equal(await videoOf(page, keys[0]).getAttribute('tabindex'), '0');

  await page.reload();
  await connected(page);
  assert.equal(await button.textContent(), 'Play clips', 'remembered');
  assert.equal(await button.getAttribute('aria-pressed'), 'true');
  for (const key of keys) await assertHeld(page, key, 'after a reload');
  assert.deepEqual(
    (await mediaStates(page)).map((state) => state.time),
    keys.map(() => 0),
    'none moved on the way in',
  );

  // A clip that arrives while held is held too.
  const [late] = await sendClips(b, 1, 'late');
  await videoOf(page, late.key).waitFor();
  await assertHeld(page, late.key, 'a clip that arrived while held');

  await button.focus();
  await page.keyboard.press('Space');
  assert.equal(await button.textContent(), 'Pause clips');
  assert.equal(await button.getAttribute('aria-pressed'), 'false');
  for (const key of [...keys, late.key]) await untilPlaying(page, key);
  assert.deepEqual(uncaught(page), []);
});

browserTest('with reduced motion clips start still, showing the poster, and play while hovered or focused', async (t, b) => {
  await b.start();
  const clips = await sendClips(b, 2);
  if (skipWithoutVideo(t, clips[0])) return;
  const [key, other] = clips.map((clip) => clip.key);
  const page = await b.open('/', { name: 'calm', contextOptions: { reducedMotion: 'reduce' } });
  await connected(page);
  const button = page.locator('#motion');
  assert.equal(await button.textContent(), 'Play clips', 'the button says the clips are held');
  assert.equal(await button.getAttribute('aria-pressed'), 'true');
  for (const clip of clips) {
    await assertHeld(page, clip.key, 'reduced motion');
    // Never started: what shows is the poster (time 0, nothing played).
    assert.deepEqual(
      await videoOf(page, clip.key).evaluate((element) => [element.currentTime, element.played.length, element.getAttribute('poster')]),
      [0, 0, clip.poster],
    );
  }

  await videoOf(page, key).hover();
  await untilPlaying(page, key);
  await assertHeld(page, other, 'the clip not hovered');
  await page.mouse.move(0, 0);
  await assertHeld(page, key, 'after the pointer left');

  // The keyboard: a held clip is a tab stop, and plays while focused.
  assert.equal(await videoOf(page, other).getAttribute('tabindex'), '0');
  await clipFor(page, key).locator('.clip-report').focus();
  await page.keyboard.press('Tab');
  assert.equal(await videoOf(page, other).evaluate((element) => element === document.activeElement), true, 'Tab reaches the next clip');
  await untilPlaying(page, other);
  await page.locator('#text').focus();
  await assertHeld(page, other, 'after focus moved on');

  // Pressing Play lets them all loop, and that choice is remembered over the system's.
  await button.click();
  for (const clip of clips) await untilPlaying(page, clip.key);
  await page.reload();
  await connected(page);
  for (const clip of clips) await untilPlaying(page, clip.key);
});

browserTest('on a touch screen with reduced motion a tap plays a held clip and a second tap holds it again', async (t, b) => {
  await b.start();
  const [clip] = await sendClips(b, 1, 'tap');
  if (skipWithoutVideo(t, clip)) return;
  const page = await b.open('/', { name: 'thumb', viewport: PHONE, contextOptions: { reducedMotion: 'reduce', hasTouch: true, isMobile: true } });
  await connected(page);
  await assertHeld(page, clip.key, 'reduced motion');
  await videoOf(page, clip.key).tap();
  await untilPlaying(page, clip.key);
  // Still playing once the finger is gone: a tap is not a hover.
  await page.waitForTimeout(500);
  assert.equal(await videoOf(page, clip.key).evaluate((element) => element.paused), false);
  await videoOf(page, clip.key).tap();
  await assertHeld(page, clip.key, 'after the second tap');
});

browserTest('a browser that cannot play H.264 is shown the GIFs and fetches no video', async (t, b) => {
  await b.start();
  const [before] = await sendClips(b, 1, 'before');
  let mp4Requests = 0;
  const page = await b.open('/', {
    name: 'old-browser',
    prepare: async (context) => {
      await context.addInitScript(() => {
        HTMLMediaElement.prototype.canPlayType = () => '';
      });
      context.on('request', (request) => {
        if (new URL(request.url()).pathname.endsWith('.mp4')) mp4Requests += 1;
      });
    },
  });
  await connected(page);
  const [after] = await sendClips(b, 1, 'after');
  await clipFor(page, after.key).waitFor();
  for (const clip of [before, after]) {
    const gif = clipFor(page, clip.key).locator('img.clip-gif');
    await page.waitForFunction((image) => image.complete && image.naturalWidth === 200, await gif.elementHandle());
    assert.equal(await gif.getAttribute('src'), clip.clip);
    assert.equal(await gif.getAttribute('alt'), `Looping clip from ${clip.author.name}`);
    assert.equal(await clipFor(page, clip.key).locator('video').count(), 0);
  }
  assert.equal(mp4Requests, 0, 'no MP4 was requested');
  assert.deepEqual(uncaught(page), []);
});

browserTest('clips stored before videos show their GIFs, and a video that fails becomes its GIF', async (t, b) => {
  // A data dir as the server left it before clips had videos (see its README): two clips
  // whose records have no video and no poster.
  const dataDir = await tempDir('before-video-');
  t.after(() => removeDir(dataDir));
  cpSync(BEFORE_VIDEO, dataDir, { recursive: true, filter: (path) => !path.endsWith('README.md') });
  await b.start({ dataDir });
  const [fresh] = await sendClips(b, 1, 'fresh');
  const page = await b.open('/', { name: 'reader' });
  await connected(page);
  const old = (await clipJson(b, fresh.key, { all: true })).filter((clip) => clip.video === null);
  assert.equal(old.length, 2, 'the two clips from before videos are replayed');
  const items = await page.$$eval('#clips li.clip', (list) => list.map((item) => item.dataset.key));
  assert.deepEqual(items, [...old.map((clip) => clip.key), fresh.key], 'rendered by the server, oldest first');

  // And one whose video cannot be had (gone from the server, or undecodable), as it arrives.
  const broken = { ...fresh, key: `${fresh.key.slice(0, -3)}f01`, video: `/clips/${fresh.key}.broken.mp4`, message: 'a broken video' };
  await page.evaluate((clip) => {
    const [listener] = window.loopchat.socket.listeners('message');
    listener(clip);
  }, broken);

  for (const shown of [...old, broken]) {
    const gif = clipFor(page, shown.key).locator('img.clip-gif');
    await gif.waitFor();
    await page.waitForFunction((image) => image.complete && image.naturalWidth > 0, await gif.elementHandle());
    assert.equal(await gif.getAttribute('src'), shown.clip, `${shown.message}: the GIF`);
    assert.equal(await clipFor(page, shown.key).locator('video').count(), 0, `${shown.message}: no video`);
    assert.equal(await clipFor(page, shown.key).locator('a.clip-save').getAttribute('href'), shown.clip);
  }
  if (fresh.video !== null) await untilPlaying(page, fresh.key);
  assert.deepEqual(uncaught(page), []);
});

browserTest('the chat page turns its camera off while it is hidden, and on again when shown', async (t, b) => {
  await b.start();
  const page = await b.open('/', { name: 'hider' });
  await readyToSend(page);
  await page.evaluate(() => {
    window.firstTrack = window.loopchat.camera.stream.getVideoTracks()[0];
  });
  assert.equal(await page.evaluate(() => window.firstTrack.readyState), 'live');

  // What the browser does when another tab comes to the front or the phone locks.
  const setVisibility = (state) => page.evaluate((wanted) => {
    Object.defineProperty(document, 'visibilityState', { value: wanted, configurable: true });
    Object.defineProperty(document, 'hidden', { value: wanted === 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
  await setVisibility('hidden');
  await page.waitForFunction(() => window.firstTrack.readyState === 'ended');
  assert.equal(await page.evaluate(() => window.loopchat.camera.stream), null);
  assert.equal(await page.getAttribute('#camera', 'data-state'), 'off');
  assert.equal(await page.isDisabled('#text'), true, 'nothing can be recorded meanwhile');

  await setVisibility('visible');
  await readyToSend(page);
  assert.equal(await page.evaluate(() => window.loopchat.camera.stream.getVideoTracks()[0].readyState), 'live');
  assert.notEqual(await page.evaluate(() => window.loopchat.camera.stream.getVideoTracks()[0] === window.firstTrack), true);
  await sendFromPage(page, 'back again');
  assert.deepEqual(uncaught(page), []);
});

browserTest('the live page\'s button holds the others\' pictures where they are, and is the chat page\'s choice', async (t, b) => {
  await b.start();
  const streamer = await b.open('/live', { name: 'streamer' });
  const watcher = await b.open('/live', { name: 'watcher', camera: 'denied' });
  for (const page of [streamer, watcher]) {
    await connected(page);
    await page.locator('#go-live:enabled').waitFor();
  }
  await streamer.click('#go-live');
  const picture = watcher.locator('#tiles li.tile:not(.mine) img.tile-picture');
  await picture.waitFor({ state: 'visible' });
  const changes = async () => {
    const first = await picture.getAttribute('src');
    await watcher.waitForFunction(([img, before]) => img.getAttribute('src') !== before, [await picture.elementHandle(), first]);
  };
  await changes();

  const button = watcher.locator('#motion');
  assert.equal(await button.textContent(), 'Pause pictures');
  await button.click();
  assert.equal(await button.textContent(), 'Play pictures');
  assert.equal(await button.getAttribute('aria-pressed'), 'true');
  const held = await picture.getAttribute('src');
  // The streamer sends one a second: three seconds of them do not change the picture.
  const relayed = await watcher.evaluate(() => new Promise((resolve) => {
    let count = 0;
    window.loopchat.socket.on('live:frame', () => { count += 1; });
    setTimeout(() => resolve(count), 3000);
  }));
  assert.ok(relayed >= 1, `frames still arrive (${relayed})`);
  assert.equal(await picture.getAttribute('src'), held, 'the picture is held');
  assert.equal(await watcher.locator('#tiles li.tile:not(.mine)').getAttribute('data-state'), 'live', 'held, not gone stale');

  // The same choice on the chat page of that browser.
  const chat = await watcher.context().newPage();
  await chat.goto(new URL('/', b.server.url).href);
  await connected(chat);
  assert.equal(await chat.locator('#motion').textContent(), 'Play clips');
  await chat.close();

  await button.click();
  assert.equal(await button.textContent(), 'Pause pictures');
  await changes();
});

browserTest('a chat page opened in a background tab opens its camera only once it is shown', async (t, b) => {
  await b.start();
  const page = await b.open('/', {
    name: 'background',
    prepare: (context) => context.addInitScript(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      Object.defineProperty(document, 'hidden', { value: true, configurable: true });
      window.cameraRequests = 0;
      const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (constraints) => {
        window.cameraRequests += 1;
        return getUserMedia(constraints);
      };
    }),
  });
  await connected(page);
  await page.waitForFunction(() => document.getElementById('camera').dataset.state === 'off');
  assert.equal(await page.evaluate(() => window.cameraRequests), 0, 'the camera was not asked for');

  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
    Object.defineProperty(document, 'hidden', { value: false, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await readyToSend(page);
  assert.equal(await page.evaluate(() => window.cameraRequests), 1);
  assert.equal(await page.evaluate(() => window.loopchat.camera.stream.getVideoTracks()[0].readyState), 'live');
});

browserTest('an axe-core audit of the chat page with videos finds no WCAG 2.2 A or AA violation, playing or held', async (t, b) => {
  await b.start();
  const clips = await sendClips(b, 3, 'audited');
  if (skipWithoutVideo(t, clips[0])) return;
  for (const reducedMotion of ['no-preference', 'reduce']) {
    // bypassCSP: axe is injected as a script of the test's, which the page's policy refuses.
    const page = await b.open('/', { name: 'auditor', contextOptions: { bypassCSP: true, reducedMotion } });
    await connected(page);
    await videoOf(page, clips.at(-1).key).waitFor();
    await page.addScriptTag({ path: AXE });
    const violations = await page.evaluate(async () => {
      const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
      const results = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
      return results.violations.map(({ id, nodes }) => ({ id, nodes: nodes.map((node) => node.target.join(' ')) }));
    });
    assert.deepEqual(violations, [], `reduced motion: ${reducedMotion}`);
  }
});
