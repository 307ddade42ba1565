// The chat and live pages in Firefox ESR (Debian's), driven by puppeteer-core over WebDriver
// BiDi with a fake camera: the clips' MP4s play there, a clip recorded there reaches
// another client, and the live room streams both ways.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
// First: it points TMPDIR at this process's own folder, where Firefox's profile goes too.
import { connect, startServer } from '../e2e/helpers.mjs';
import puppeteer from 'puppeteer-core';
import {
  MEDIA_STATE, WAIT_MS, clipWithText, frameFrom, nodeStreamer, sendClips, until, untilClipsPlay,
} from './engines.mjs';

const FIREFOX = process.env.FIREFOX_BIN ?? '/usr/bin/firefox-esr';

let server;
let browser;
const clients = [];

before(async () => {
  server = await startServer();
  browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    // Tall enough that every clip of a test is in view: clips off screen are paused.
    defaultViewport: { width: 1280, height: 1600 },
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
    },
  });
});

after(async () => {
  for (const client of clients) client.close();
  try {
    await browser?.close();
  } finally {
    await server?.cleanup();
  }
});

/** A page of its own (a fresh browser context: its own storage) at `path`, as `name`. */
async function open(path, name) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.problems = [];
  page.on('pageerror', (error) => page.problems.push(error.message));
  await page.evaluateOnNewDocument((wanted) => localStorage.setItem('loopchat.name', wanted), name);
  await page.goto(new URL(path, server.url).href);
  await page.waitForFunction(() => window.loopchat?.socket?.connected);
  return page;
}

test('Firefox: the chat page plays the clips as MP4 videos', { timeout: 90_000 }, async () => {
  const clips = await sendClips(server.url, 3, 'firefox-replay', clients);
  const page = await open('/', 'fox-reader');
  // Two from the server-rendered replay, one that arrives live.
  const [live] = await sendClips(server.url, 1, 'firefox-live', clients);
  const states = await untilClipsPlay(() => page.evaluate(new Function(MEDIA_STATE)), [...clips, live]);
  if (clips[0].video === null) {
    process.stdout.write('# Firefox: the server gives clips no video (Clip.video is null): the GIFs were checked instead\n');
  } else {
    assert.ok(states.every((state) => state.kind === 'video'), JSON.stringify(states));
  }
  assert.deepEqual(page.problems, []);
  await page.browserContext().close();
});

test('Firefox: a clip recorded on the chat page reaches another client', { timeout: 90_000 }, async () => {
  const page = await open('/', 'fox-sender');
  const listener = await connect(server.url, { name: 'listener' }).ready;
  clients.push(listener);
  await page.waitForSelector('#text:not([disabled])');
  const text = `from firefox ${Date.now()}`;
  const arrived = clipWithText(listener, text);
  await page.type('#text', text);
  await page.keyboard.press('Enter');
  const clip = await arrived;
  assert.equal(clip.frames, 10);
  assert.equal(clip.author.name, 'fox-sender');
  // And the page shows its own clip, playing.
  await untilClipsPlay(() => page.evaluate(new Function(MEDIA_STATE)), [clip]);
  assert.deepEqual(page.problems, []);
  await page.browserContext().close();
});

test('Firefox: the live page shows another participant and streams its camera to them', { timeout: 90_000 }, async () => {
  const streamer = await nodeStreamer(server.url, 'node-cam');
  clients.push(streamer.client);
  const page = await open('/live', 'fox-live');
  await page.waitForSelector('#go-live:not([disabled])');
  // The Node participant's tile gets its picture.
  await until(() => page.evaluate((id) => {
    const picture = document.querySelector(`#tiles li.tile[data-id="${id}"] img.tile-picture`);
    return Boolean(picture && !picture.hidden && picture.complete && picture.naturalWidth === 200);
  }, streamer.me.id), 'the Node participant\'s picture shows');
  // Going live sends this page's camera to the others.
  await page.click('#go-live');
  await page.waitForSelector('#stop:not([hidden])');
  const myId = await page.evaluate(() => document.querySelector('#tiles li.tile.mine')?.dataset.id);
  assert.ok(myId, 'the page has its own tile');
  const jpeg = await frameFrom(streamer.client, myId);
  assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8], 'a JPEG from Firefox\'s camera');
  assert.deepEqual(page.problems, []);
  streamer.stop();
  await page.browserContext().close();
});
