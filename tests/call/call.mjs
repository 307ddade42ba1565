// Shared helpers for the call suites (SPEC §9): the browser harness with the one flag WebRTC
// over loopback needs, the call page's state, proof that media flows (WEBRTC.md), and the
// cost of a call (time and CPU), printed and never asserted.
//
// These suites run inside a network namespace that has only loopback (scripts/test:
// `unshare -n sh -c 'ip link set lo up && exec node --test tests/call/'`), so no ICE
// candidate can be on another interface.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as connectClient, once } from '../e2e/helpers.mjs';
import { browserTest, connected } from '../browser/browser.mjs';

/** Without it Chromium gathers no candidate on loopback and ICE never starts. */
export const CALL_ARGS = ['--allow-loopback-in-peer-connection'];
/** How long a call may take to connect on a loaded 2-core machine. */
export const CONNECT_MS = 30_000;
/** The gap between the two stats snapshots that must both show growth (WEBRTC.md: 1–3 s). */
const FLOW_GAP_MS = 1500;

/** `browserTest` whose harness `b` starts call-ready browsers: `b.startCall(serverArgs)`. */
export function callTest(name, fn, options = {}) {
  return browserTest(name, async (t, b) => {
    b.startCall = (args = []) => b.start({ args }, { chromiumArgs: CALL_ARGS });
    // The call page warns (console.warn) when a signal could not be applied: a problem too.
    const open = b.open.bind(b);
    b.open = async (path, options) => {
      const page = await open(path, options);
      page.on('console', (message) => {
        if (message.type() === 'warning' && message.text().startsWith('call:')) page.problems.push(`console: ${message.text()}`);
      });
      return page;
    };
    await fn(t, b);
  }, options);
}

/** A fresh room from `GET /call` (a 303 to `/call/<room>`); returns its path. */
export async function newRoom(url) {
  const response = await fetch(new URL('/call', url), { redirect: 'manual' });
  assert.equal(response.status, 303);
  const location = response.headers.get('location');
  assert.match(location, /^\/call\/[a-z0-9-]+$/);
  return location;
}

/** Resolves once the page is connected and in its call (the join reply came). */
export async function inCall(page, timeout = CONNECT_MS) {
  await connected(page);
  await page.waitForFunction(() => window.loopchat?.call?.joined === true, null, { timeout });
}

/** The call page's tile for the peer named `name`. */
export function tileOf(page, name) {
  return page.locator('#call-tiles li.call-tile:not(.mine)', {
    has: page.locator('.call-name', { hasText: new RegExp(`^${name}$`) }),
  });
}

/**
 * Waits until `page` has a connected RTCPeerConnection to each of `names` (and to nobody
 * else) whose video has decoded frames and whose audio has bytes, and whose tile has begun
 * to play: media has started to arrive from all of them, and shows. (Frames can be decoded
 * a moment before the tile's `<video>` starts: on a loaded machine, a flow check that began
 * in that moment saw the tile at 0 s twice.)
 */
export async function framesFrom(page, names, timeout = CONNECT_MS) {
  // Polled from here: waitForFunction takes a returned promise as a truthy answer.
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await page.evaluate(async (wanted) => {
      const seen = [];
      for (const [id, peer] of window.loopchat.call.peers) {
        const video = document.querySelector(`#call-tiles li[data-id="${CSS.escape(id)}"] video`);
        const played = video?.currentTime ?? 0;
        let frames = 0;
        let sound = 0;
        (await peer.pc.getStats()).forEach((report) => {
          if (report.type === 'inbound-rtp' && report.kind === 'video') frames = report.framesDecoded ?? 0;
          if (report.type === 'inbound-rtp' && report.kind === 'audio') sound = report.bytesReceived ?? 0;
        });
        seen.push({ name: peer.info.name, state: peer.pc.connectionState, frames, sound, played });
      }
      const done = seen.length === wanted.length
        && wanted.every((name) => seen.some((peer) => peer.name === name))
        && seen.every((peer) => peer.state === 'connected' && peer.frames > 0 && peer.sound > 0 && peer.played > 0);
      return { done, seen };
    }, names);
    if (last.done) return;
    if (Date.now() > deadline) {
      throw new Error(`${page.label}: no frames from all of ${names.join(', ')} within ${timeout} ms (${JSON.stringify(last.seen)})`);
    }
    await sleep(200);
  }
}

/**
 * Opens a page in `room` for each of `names`, one after the other, and resolves with them
 * once every page is in the call and has frames and sound from every other.
 */
export async function openInCall(b, room, names) {
  const pages = [];
  for (const name of names) pages.push(await b.open(room, { name }));
  await Promise.all(pages.map((page) => inCall(page)));
  await Promise.all(pages.map((page, i) => framesFrom(page, names.filter((_, j) => j !== i))));
  return pages;
}

/**
 * For each peer of `page`, by name: its inbound video (`framesDecoded`, `bytesReceived`)
 * and audio (`bytesReceived`), how far its tile's `<video>` has played, and the selected
 * candidate pair (`nominated`, the local and remote candidate types, the local address).
 */
export function mediaStats(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const [id, peer] of window.loopchat.call.peers) {
      const stats = await peer.pc.getStats();
      const entry = { video: null, audio: null, pair: null, played: 0 };
      let transport;
      stats.forEach((report) => {
        if (report.type === 'inbound-rtp' && report.kind === 'video') {
          entry.video = { framesDecoded: report.framesDecoded ?? 0, bytesReceived: report.bytesReceived ?? 0 };
        }
        if (report.type === 'inbound-rtp' && report.kind === 'audio') {
          entry.audio = { bytesReceived: report.bytesReceived ?? 0 };
        }
        if (report.type === 'transport') transport = report;
      });
      const pair = transport && stats.get(transport.selectedCandidatePairId);
      if (pair) {
        const local = stats.get(pair.localCandidateId);
        const remote = stats.get(pair.remoteCandidateId);
        entry.pair = {
          nominated: pair.nominated,
          local: local?.candidateType,
          remote: remote?.candidateType,
          address: local?.address,
          protocol: local?.protocol,
        };
      }
      const video = document.querySelector(`#call-tiles li[data-id="${CSS.escape(id)}"] video`);
      entry.played = video?.currentTime ?? 0;
      out[peer.info.name ?? id] = entry;
    }
    return out;
  });
}

/**
 * Proves that on every page of `pages` (`{ page, from: [names] }`) video and audio arrive
 * from each of `from` (WEBRTC.md): two snapshots 1.5 s apart, in which video
 * `framesDecoded` and `bytesReceived`, audio `bytesReceived` and the tile's playback time
 * all grew, over a nominated candidate pair on loopback; `pair(where, pair)` may check the
 * pair further.
 */
export async function assertFlowing(pages, { pair: checkPair } = {}) {
  const before = await Promise.all(pages.map(({ page }) => mediaStats(page)));
  await sleep(FLOW_GAP_MS);
  const after = await Promise.all(pages.map(({ page }) => mediaStats(page)));
  pages.forEach(({ page, from }, index) => {
    for (const name of from) {
      const [was, now] = [before[index][name], after[index][name]];
      const where = `${page.label} ← ${name}`;
      assert.ok(was && now, `${where}: no connection (${JSON.stringify(after[index])})`);
      assert.ok(was.video && now.video, `${where}: no inbound video (${JSON.stringify([was, now])})`);
      assert.ok(now.video.framesDecoded > was.video.framesDecoded, `${where}: video frames did not grow (${JSON.stringify([was.video, now.video])})`);
      assert.ok(now.video.bytesReceived > was.video.bytesReceived, `${where}: video bytes did not grow`);
      assert.ok(was.audio && now.audio && now.audio.bytesReceived > was.audio.bytesReceived, `${where}: audio bytes did not grow (${JSON.stringify([was.audio, now.audio])})`);
      assert.ok(now.played > was.played, `${where}: the tile's video did not play on (${was.played} → ${now.played})`);
      assert.equal(now.pair?.nominated, true, `${where}: the selected pair is not nominated (${JSON.stringify(now.pair)})`);
      assert.equal(now.pair.address, '127.0.0.1', `${where}: not on loopback (${JSON.stringify(now.pair)})`);
      checkPair?.(where, now.pair);
    }
  });
}

/** A socket.io-client socket in the call room `room` (a path `/call/<room>`), joined. */
export async function joinAsClient(url, path, name) {
  const client = await connectClient(url, { name }).ready;
  const reply = await client.socket.timeout(10_000).emitWithAck('call:join', { room: path.split('/').pop() });
  return { client, reply };
}

export { once };

// ---- cost: wall time and CPU of everything this test process started ------------------

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, children included) of this process and all its descendants. */
function treeCpuSeconds() {
  const children = new Map();
  const ticks = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // The command name is in parentheses and may hold spaces; the fields follow it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const parent = Number(fields[1]);
    const pid = Number(entry);
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(pid);
    ticks.set(pid, Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]));
  }
  let total = 0;
  const stack = [process.pid];
  while (stack.length) {
    const pid = stack.pop();
    total += ticks.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total / TICKS_PER_SECOND;
}

/**
 * Starts a meter: `mark(what)` notes the time since the start, and `report(t, label)`
 * prints them with the CPU used meanwhile (in cores: CPU seconds per second) as a test
 * diagnostic, for the README's table of what a call costs. Nothing is asserted.
 */
export function costMeter() {
  const started = performance.now();
  const cpuAtStart = treeCpuSeconds();
  const marks = [];
  return {
    mark(what) {
      marks.push(`${what} ${((performance.now() - started) / 1000).toFixed(1)} s`);
    },
    report(t, label) {
      const seconds = (performance.now() - started) / 1000;
      const cores = (treeCpuSeconds() - cpuAtStart) / seconds;
      t.diagnostic(`cost of ${label}: launch → ${marks.join(', ')}; CPU ${cores.toFixed(2)} cores over ${seconds.toFixed(1)} s (Chromium, loopchat and this process)`);
    },
  };
}
