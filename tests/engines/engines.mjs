// The pages in the two browser engines besides Chromium (SPEC §7, §12): Firefox ESR driven
// by puppeteer-core over WebDriver BiDi, and WebKitGTK's MiniBrowser driven by
// selenium-webdriver through WebKitWebDriver under Xvfb. Both use Debian's own builds and
// fake cameras. Each engine's file starts its browser once and runs a few tests in it:
// what differs by engine (plays the MP4, records and sends, the live room), not what the
// Chromium suites already show.
//
// Every process started here is stopped by its test file's `after` hook, and by
// tests/lib/cleanup.mjs however the process ends; every folder is inside its ROOT.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, loadFrames, once, sendGoodClip } from '../e2e/helpers.mjs';

/** Default timeout of every wait here: long enough for a loaded machine, short enough to fail. */
export const WAIT_MS = 20_000;

/** Polls `check()` (async, truthy when done) until it is, or fails naming `what` (a string, or a function giving one). */
export async function until(check, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting until ${typeof what === 'function' ? what() : what}`);
    await sleep(100);
  }
}

/** Sends `count` clips of the fixture frames from Node clients (a few per socket, under §5's limits). */
export async function sendClips(url, count, prefix, clients) {
  const frames = loadFrames();
  const clips = [];
  for (let sent = 0; sent < count; sent += 4) {
    const sender = await connect(url, { name: `${prefix}-sender` }).ready;
    clients.push(sender);
    for (let index = sent; index < Math.min(count, sent + 4); index += 1) {
      clips.push(await sendGoodClip(sender.socket, { id: `${prefix}-${index}`, message: `${prefix} ${index}`, frames }));
    }
  }
  return clips;
}

/**
 * A Node participant of the live room that streams the fixture frame once a second, as a
 * page that went live does. Returns `{ client, stop() }`.
 */
export async function nodeStreamer(url, name) {
  const client = await connect(url, { name }).ready;
  const reply = await client.socket.timeout(WAIT_MS).emitWithAck('live:join');
  assert.equal(reply?.ok, true, `the Node participant joined: ${JSON.stringify(reply)}`);
  const [frame] = loadFrames();
  client.socket.emit('live:frame', frame);
  const timer = setInterval(() => client.socket.emit('live:frame', frame), 1000);
  return { client, me: reply.you, stop: () => { clearInterval(timer); client.close(); } };
}

/** Waits for a `live:frame` on `client` from connection `from`; returns the JPEG. */
export async function frameFrom(client, from) {
  const [, jpeg] = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.socket.off('live:frame', listener); reject(new Error(`no live:frame from ${from} within ${WAIT_MS} ms`)); }, WAIT_MS);
    function listener(meta, data) {
      if (meta?.from !== from) return;
      clearTimeout(timer);
      client.socket.off('live:frame', listener);
      resolve([meta, data]);
    }
    client.socket.on('live:frame', listener);
  });
  return Buffer.from(jpeg);
}

/** Waits for a `message` (someone else's clip) with `text` on `client`. */
export function clipWithText(client, text) {
  return once(client.socket, 'message', WAIT_MS, (clip) => clip?.message === text);
}

/** Page code: what each clip's picture is and how far its video played. */
export const MEDIA_STATE = `return [...document.querySelectorAll('#clips li.clip')].map((item) => {
  const media = item.querySelector('.clip-video, .clip-gif');
  const video = media && media.matches('video') ? media : null;
  return {
    key: item.dataset.key,
    kind: video ? 'video' : media ? 'gif' : 'none',
    src: media ? media.currentSrc || media.getAttribute('src') : null,
    ready: video ? video.readyState : null,
    played: video && video.played.length ? video.played.end(video.played.length - 1) : 0,
    gifLoaded: !video && media ? media.complete && media.naturalWidth > 0 : null,
  };
});`;

/**
 * Waits until every clip of `clips` is shown by the page whose state `read()` gives
 * (`MEDIA_STATE`): as a video that loaded and played `played` seconds or more (0: that
 * played at all), or, where the clip has no video, as a GIF that loaded. Returns the
 * states.
 */
export async function untilClipsPlay(read, clips, { played = 0.5 } = {}) {
  let states;
  return until(async () => {
    states = await read();
    const ok = clips.every((clip) => {
      const state = states.find((candidate) => candidate.key === clip.key);
      if (!state) return false;
      if (clip.video === null) return state.kind === 'gif' && state.gifLoaded;
      return state.kind === 'video' && state.src.endsWith(clip.video)
        && state.ready >= 2 && state.played > 0 && state.played >= played;
    });
    return ok && states;
  }, () => `the clips play (${JSON.stringify(clips.map((clip) => clip.video))}); last seen: ${JSON.stringify(states)}`);
}

/** A TCP port that was free a moment ago (for WebKitWebDriver, which takes no port 0). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `xvfb-run -a WebKitWebDriver --port=N` in a process group of its own (MiniBrowser
 * needs a display; killing only the driver would leave Xvfb running). The driver takes no
 * port 0, so it is given a port that was free a moment ago, and started again on another
 * if that one was taken meanwhile. Resolves with `{ url, output(), stop() }` once the
 * driver answers.
 */
export async function startWebKitDriver() {
  for (let attempt = 1; ; attempt += 1) {
    const driver = await tryWebKitDriver(await freePort());
    if (driver.url) return driver;
    if (attempt === 5 || !/address already in use|bind|listen/i.test(driver.output())) {
      assert.fail(`WebKitWebDriver did not start: ${driver.output()}`);
    }
  }
}

async function tryWebKitDriver(port) {
  // A screen tall enough for a window in which every clip of a test is in view.
  const child = spawn('xvfb-run', ['-a', '-s', '-screen 0 1280x1800x24', 'WebKitWebDriver', `--port=${port}`], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = [];
  child.stdout.on('data', (data) => output.push(String(data)));
  child.stderr.on('data', (data) => output.push(String(data)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const answered = await until(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    try {
      return (await fetch(`${url}/status`)).ok && 'answered';
    } catch {
      return false;
    }
  }, 'WebKitWebDriver answers');
  if (answered === 'exited') {
    // Whatever of its group is left (Xvfb) goes with it.
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* nobody left */ }
    return { url: null, output: () => output.join('') };
  }
  return {
    url,
    output: () => output.join(''),
    async stop() {
      // The whole group: xvfb-run, Xvfb, the driver and the MiniBrowser it started.
      const group = (signal) => {
        try {
          process.kill(-child.pid, signal);
          return true;
        } catch {
          return false; // nobody left in it
        }
      };
      if (!group('SIGTERM')) return;
      const result = await Promise.race([exited, sleep(5000).then(() => 'timeout')]);
      if (result === 'timeout') group('SIGKILL');
      await exited;
      // xvfb-run has gone; whatever of its group outlived it goes now.
      for (let tries = 0; tries < 50 && group(0); tries += 1) await sleep(100);
      group('SIGKILL');
    },
  };
}
