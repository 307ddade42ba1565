// Shared helpers for the browser suites: the real server (from the e2e helpers), headless
// Chromium with a fake camera, and pages that record what a person would notice going
// wrong (dialogs, uncaught errors).
//
// Nothing here measures time: every wait has a timeout only so that a broken page fails a
// test instead of hanging it.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { REPO_ROOT, connect, loadFrames, sendGoodClip, startServer } from '../e2e/helpers.mjs';

export const ARTIFACTS = resolve(REPO_ROOT, 'test-artifacts');
/** Default timeout of every wait in these suites. */
export const WAIT_MS = 15_000;
/**
 * How long a page may take to come back after `restartServer`: socket.io-client backs off
 * between attempts (about 1, 2, 4, then 5 s), and the stop and start take seconds of their
 * own on a loaded machine.
 */
export const RESTART_WAIT_MS = 45_000;
/** How often, and how far apart, a restart on a port that another process holds is tried. */
const RESTART_TRIES = 20;
const RESTART_RETRY_MS = 250;

/**
 * Debian's chromium. The fake device gives every page a synthetic camera (a moving test
 * pattern); the fake UI grants the camera without a permission prompt.
 */
export const CHROMIUM_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function launchChromium(args) {
  return chromium.launch({ executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium', args });
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * `browserTest(name, fn)` is `test(name, fn)` with a harness `b` as the second argument:
 * the server, the browser and every page made through it are closed after the test, and
 * when the test fails the server's output is printed.
 */
export function browserTest(name, fn, options = {}) {
  return test(name, { timeout: 120_000, ...options }, async (t) => {
    const b = new BrowserHarness();
    t.after(() => b.cleanup());
    try {
      await fn(t, b);
    } catch (error) {
      if (b.server) {
        process.stderr.write(`\n---- loopchat output (${name}) ----\n${b.server.output()}\n---- end ----\n`);
      }
      for (const page of b.pages) {
        if (page.problems.length) process.stderr.write(`---- page ${page.label}: ${page.problems.join('\n')}\n`);
      }
      throw error;
    }
  });
}

class BrowserHarness {
  constructor() {
    this.server = null;
    /** Servers stopped by `restartServer`, cleaned up (their data dirs removed) last. */
    this.stoppedServers = [];
    this.browser = null;
    /** Browsers made by `launch`, beside `browser`. */
    this.browsers = [];
    this.pages = [];
    this.clients = [];
  }

  /**
   * Starts the server and the browser; returns the server's base URL. `cameras` is how
   * many fake cameras the browser lists (one unless asked); `chromiumArgs` are added to
   * its flags.
   */
  async start(serverOptions, { cameras = 1, chromiumArgs = [] } = {}) {
    this.server = await startServer(serverOptions);
    const args = cameras === 1
      ? CHROMIUM_ARGS
      : CHROMIUM_ARGS.map((arg) => (arg === '--use-fake-device-for-media-stream' ? `${arg}=device-count=${cameras}` : arg));
    this.browser = await launchChromium([...args, ...chromiumArgs]);
    return this.server.url;
  }

  /**
   * Another browser beside the one `start` made, closed with it; `devices: false` gives it
   * no camera and no microphone at all (but the fake UI still grants what a page asks).
   * Pass it to `open` as `browser`.
   */
  async launch({ devices = true, chromiumArgs = [] } = {}) {
    const args = devices ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((arg) => !arg.startsWith('--use-fake-device-for-media-stream'));
    const browser = await launchChromium([...args, ...chromiumArgs]);
    this.browsers.push(browser);
    return browser;
  }

  /**
   * Stops the server (SIGTERM) and starts a new one on the same port and data dir, as an
   * operator's restart looks to the pages already open.
   */
  async restartServer() {
    const old = this.server;
    await old.stop();
    this.stoppedServers.push(old);
    // The pages reconnect to the URL they loaded, so the new server must take the same
    // port: it cannot take port 0 as every other start does. Between the stop and this
    // start another process (a test file running beside this one) may be given that port,
    // for a connection of its own or a port-0 listener; loopchat then exits with "address
    // already in use". Such a holder is usually gone in a moment, so the start is tried
    // again, RESTART_TRIES times at most, before the test fails.
    const port = Number(new URL(old.url).port);
    for (let attempt = 1; ; attempt += 1) {
      try {
        this.server = await startServer({ dataDir: old.dataDir, port });
        return this.server.url;
      } catch (error) {
        if (attempt === RESTART_TRIES || !/address already in use/i.test(error.output ?? '')) throw error;
        await sleep(RESTART_RETRY_MS);
      }
    }
  }

  /**
   * Opens `path` (relative to the server's URL, or absolute) in a fresh browser context (its own storage, like another person's
   * browser). `name` is the display name the page asks the server for; `camera: 'denied'`
   * makes getUserMedia fail as when the person refuses the camera; `prepare(context)` runs
   * before the page loads; `browser` is one made by `launch` instead of the first;
   * `contextOptions` are playwright's for the new context (e.g. `{ bypassCSP: true }` for
   * a page that injects a test tool as a script).
   */
  async open(path, { name, camera = 'fake', viewport = DESKTOP, label = name ?? path, prepare, browser = this.browser, contextOptions = {} } = {}) {
    const context = await browser.newContext({ viewport, ...contextOptions });
    // E.g. routes that tamper with the page's traffic, set before it loads.
    await prepare?.(context);
    if (name !== undefined) {
      await context.addInitScript((wanted) => localStorage.setItem('loopchat.name', wanted), name);
    }
    if (camera === 'denied') {
      await context.addInitScript(() => {
        navigator.mediaDevices.getUserMedia = () =>
          Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
      });
    }
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.label = label;
    page.dialogs = [];
    page.problems = [];
    page.on('dialog', (dialog) => {
      page.dialogs.push(dialog.message());
      dialog.dismiss().catch(() => {});
    });
    page.on('pageerror', (error) => page.problems.push(`uncaught: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') page.problems.push(`console: ${message.text()}`);
    });
    await page.goto(new URL(path, this.server.url).href);
    this.pages.push(page);
    return page;
  }

  /** A socket.io-client socket in Node (see the e2e `connect`), greeted and replayed. */
  async client(url, name) {
    const client = connect(url, { name });
    this.clients.push(client);
    return client.ready;
  }

  async cleanup() {
    for (const client of this.clients) client.close();
    try {
      for (const browser of this.browsers) await browser.close();
      await this.browser?.close();
    } finally {
      await this.server?.cleanup();
      for (const server of this.stoppedServers) await server.cleanup();
    }
  }
}

/** Resolves once the page's socket is connected and greeted. */
export async function connected(page) {
  await page.waitForFunction(() => window.loopchat?.socket?.connected && !document.getElementById('me').hidden);
}

/** The user id the server gave this page (the header's identicon is drawn from it). */
export function userId(page) {
  return page.locator('#my-identicon svg.identicon').getAttribute('data-user');
}

/** Waits until the chat page's camera is running and the text box takes input. */
export async function readyToSend(page) {
  await connected(page);
  await page.locator('#text:enabled').waitFor();
}

/**
 * Types `text` on the chat page, presses Enter, and waits for the page's own clip with
 * that text; returns its key. Checks on the way that the input is disabled and the
 * progress shown while the clip is recorded and sent, and that the input is cleared with
 * no error after the ack.
 */
export async function sendFromPage(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await page.locator('#progress').waitFor({ state: 'visible' });
  assert.equal(await page.isDisabled('#text'), true, 'the input is disabled while recording');
  const own = page.locator('#clips li.clip.mine', { has: page.locator('.clip-text', { hasText: text }) });
  await own.waitFor();
  await page.locator('#text:enabled').waitFor();
  assert.equal(await page.inputValue('#text'), '', 'the input is cleared after the ack');
  assert.equal(await page.isHidden('#send-error'), true, 'no error is shown');
  return own.getAttribute('data-key');
}

/**
 * Resolves after the page has drawn two more frames: by then the layout work of the
 * first (ResizeObservers included, which run after layout) has been done and shown.
 */
export async function afterFrames(page) {
  await page.evaluate(() => new Promise((resolve) => {
    requestAnimationFrame(() => requestAnimationFrame(() => resolve()));
  }));
}

/** The chat page's item for clip `key`. */
export function clipFor(page, key) {
  return page.locator(`#clips li.clip[data-key="${key}"]`);
}

/** A request to the moderation API (SPEC §10) of the harness's server, with `token`. */
export async function admin(url, token, method, path, body) {
  const response = await fetch(new URL(path, url), {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: response.status, text, json };
}

/** Saves a full-window screenshot to test-artifacts/<name>.png; returns its path. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = resolve(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/**
 * Waits until the picture of the clip item `item` (a locator) shows a frame: its video
 * (SPEC §12) or, for a clip without one, its GIF. Returns what it shows:
 * `{ kind: 'video' | 'gif', src, width, height }` (`src` is the absolute URL).
 */
export async function clipPicture(page, item) {
  const media = await item.locator('.clip-video, .clip-gif').elementHandle();
  await page.waitForFunction((element) => (element.matches('video')
    ? element.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && element.videoWidth > 0
    : element.complete && element.naturalWidth > 0), media);
  return media.evaluate((element) => (element.matches('video')
    ? { kind: 'video', src: element.currentSrc, width: element.videoWidth, height: element.videoHeight }
    : { kind: 'gif', src: element.currentSrc, width: element.naturalWidth, height: element.naturalHeight }));
}

/**
 * Sends `count` clips of the fixture frames through socket.io-client, a few per socket so
 * that no socket's own rate limit (SPEC §5) is reached; returns them oldest first.
 */
export async function sendClips(b, count, prefix = 'clip') {
  const frames = loadFrames();
  const clips = [];
  for (let sent = 0; sent < count; sent += 4) {
    const sender = await b.client(b.server.url, `sender-${sent}`);
    for (let index = sent; index < Math.min(count, sent + 4); index += 1) {
      clips.push(await sendGoodClip(sender.socket, { id: `${prefix}-${index}`, message: `${prefix} ${index}`, frames }));
    }
  }
  return clips;
}
