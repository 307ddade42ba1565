// What every suite and the load tool start is stopped, and what they make is removed, however
// their process ends: a normal exit, an uncaught error, or a signal. `node --test` runs each
// test file in a child process of its own and, on Ctrl-C, sends it SIGTERM; a terminal's
// Ctrl-C sends SIGINT to every process of the foreground group. Node's default for either
// signal is to die at once, without running 'exit' hooks, which left loopchat, redis-server,
// nginx, turnserver and Chromium running, and their folders in /tmp.
//
// Importing this module, before anything else asks for a temporary folder:
// - makes one folder for this process (`ROOT`, /tmp/loopchat-test-XXXXXX, or under the
//   TMPDIR that scripts/test sets for its run) and points TMPDIR at it, so that every
//   temporary folder made here (`os.tmpdir()`, `tempDir()`) and by the programs started
//   here (Chromium's profile, Playwright's files) is inside it;
// - on exit, and on SIGINT, SIGTERM and SIGHUP (then exiting with 128 + the signal's
//   number), sends SIGKILL to every process descended from this one (servers, their
//   workers, browsers and their helpers; a process that wants a gentler stop gets it from
//   its own test's cleanup, which runs first on a normal end) and removes ROOT.
//
// scripts/test checks at the end that nothing of its run is left (tests/lib/leftovers.mjs).
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** This process's folder for everything temporary; removed when it ends. */
export const ROOT = mkdtempSync(join(tmpdir(), 'loopchat-test-'));
// nginx's workers run as `nobody` when the tests run as root, and must reach their folder.
chmodSync(ROOT, 0o755);
process.env.TMPDIR = ROOT;

/** A fresh folder inside ROOT (removed with it at the latest). */
export function tempDir(prefix) {
  return mkdtemp(join(ROOT, prefix));
}

/** Removes a folder made by `tempDir` now. */
export function removeDir(dir) {
  return rm(dir, { recursive: true, force: true });
}

/** The PIDs of every living process descended from `pid` (zombies left out), deepest last. */
export function descendants(pid = process.pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // The command name is in parentheses and may hold spaces; state and parent follow it.
    const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z') continue;
    const list = children.get(Number(parent)) ?? [];
    list.push(Number(entry));
    children.set(Number(parent), list);
  }
  const found = [];
  const stack = [pid];
  while (stack.length) {
    for (const child of children.get(stack.pop()) ?? []) {
      found.push(child);
      stack.push(child);
    }
  }
  return found;
}

let done = false;
/** Kills every descendant and removes ROOT; synchronous, so that it can run in an 'exit' hook. */
function cleanUpNow() {
  if (done) return;
  done = true;
  // Twice: a process that forked while the first pass ran is caught by the second.
  for (let pass = 0; pass < 2; pass += 1) {
    for (const pid of descendants()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
    }
  }
  try { rmSync(ROOT, { recursive: true, force: true }); } catch { /* best effort */ }
}

process.once('exit', cleanUpNow);
const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
for (const [signal, number] of Object.entries(SIGNALS)) {
  process.on(signal, () => {
    process.stderr.write(`\n${process.argv[1] ?? 'node'}: ${signal}: stopping every process this test started and removing ${ROOT}\n`);
    cleanUpNow();
    process.exit(128 + number);
  });
}
