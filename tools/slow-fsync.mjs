// Builds tools/slow-fsync.c (a shim that delays every fsync) with the system's C compiler,
// once per source version and test process, into its temporary folder (tests/lib/cleanup.mjs
// removes it with the rest); shared by the slow-disk tests and
// the load tool's slow-disk phase.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = new URL('./slow-fsync.c', import.meta.url);

/** The path of the built shim, for LD_PRELOAD. */
export function slowFsyncLibrary() {
  const source = readFileSync(SOURCE);
  const version = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const library = join(tmpdir(), `loopchat-slow-fsync-${version}.so`);
  if (!existsSync(library)) {
    // Built beside its final name and renamed, so a concurrent run never loads half a file.
    const partial = `${library}.${process.pid}`;
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', partial, SOURCE.pathname, '-ldl'], { stdio: 'inherit' });
    renameSync(partial, library);
  }
  return library;
}

/** Environment for a server whose every fsync takes `ms` longer. */
export function slowDiskEnv(ms = 400) {
  return { LD_PRELOAD: slowFsyncLibrary(), SLOW_FSYNC_MS: String(ms) };
}
