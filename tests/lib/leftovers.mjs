#!/usr/bin/env node
// The end of scripts/test: fails, naming them, if any process or temporary folder of this
// run is left. A process is the run's when its environment holds the LOOPCHAT_TEST_RUN that
// scripts/test exported (every process the suites start inherits it: loopchat, redis-server,
// nginx and its workers, turnserver, Chromium and its helpers); a folder is the run's when it
// is inside the TMPDIR that scripts/test made for it. Zombies are left out: they hold nothing,
// and a container whose PID 1 does not reap them keeps those of Chromium forever.
//
//   node tests/lib/leftovers.mjs <run id> <run's TMPDIR>
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [run, folder] = process.argv.slice(2);
if (!run || !folder) {
  console.error('usage: leftovers.mjs <run id> <run TMPDIR>');
  process.exit(2);
}

function stat(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [state, parent] = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state, parent: Number(parent) };
}

// This process and the ones that started it (scripts/test itself) carry the marker too.
const mine = new Set();
for (let pid = process.pid; pid > 1;) {
  mine.add(pid);
  try { pid = stat(pid).parent; } catch { break; }
}

function leftProcesses() {
  const processes = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || mine.has(Number(entry))) continue;
    try {
      if (stat(entry).state === 'Z') continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (!environ.includes(`LOOPCHAT_TEST_RUN=${run}`)) continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      processes.push(`  process ${entry}: ${command.slice(0, 200)}`);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return processes;
}

function leftFolders() {
  try {
    return readdirSync(folder).map((name) => `  folder ${folder}/${name}`);
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
}

// A run stopped by Ctrl-C gets here while its test processes are still killing theirs:
// what is left is looked at again for a few seconds before it counts.
const GRACE_MS = 5000;
const deadline = Date.now() + GRACE_MS;
let processes = leftProcesses();
let folders = leftFolders();
while ((processes.length || folders.length) && Date.now() < deadline) {
  await sleep(200);
  processes = leftProcesses();
  folders = leftFolders();
}

if (processes.length || folders.length) {
  console.error(`== left behind by the suites (each test process must stop what it started and remove what it made):\n${[...processes, ...folders].join('\n')}`);
  process.exit(1);
}
console.log('== nothing left behind: no process of this run, no temporary folder');
