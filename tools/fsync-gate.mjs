// Builds tools/fsync-gate.c (a shim that holds every fsync while a file exists) with the
// system's C compiler, once per source version, into the temporary directory, as
// tools/slow-fsync.mjs does for the slow disk.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = new URL('./fsync-gate.c', import.meta.url);

/** The path of the built shim, for LD_PRELOAD. */
export function fsyncGateLibrary() {
  const source = readFileSync(SOURCE);
  const version = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const library = join(tmpdir(), `loopchat-fsync-gate-${version}.so`);
  if (!existsSync(library)) {
    // Built beside its final name and renamed, so a concurrent run never loads half a file.
    const partial = `${library}.${process.pid}`;
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', partial, SOURCE.pathname, '-ldl'], { stdio: 'inherit' });
    renameSync(partial, library);
  }
  return library;
}

/** Environment for a server whose every fsync waits while the file `gate` exists. */
export function fsyncGateEnv(gate) {
  return { LD_PRELOAD: fsyncGateLibrary(), FSYNC_GATE: gate };
}
