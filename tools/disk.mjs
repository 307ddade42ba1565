// How much disk a folder takes, for the store's disk-bound checks (SPEC §6): the soak in
// tests/e2e/store.test.mjs and the load tool's phase g.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes a folder takes on disk (allocated blocks, as du counts them), sub-folders too. */
export function diskBytes(folder) {
  let total = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    try {
      total += entry.isDirectory() ? diskBytes(path) : statSync(path).blocks * 512;
    } catch (error) {
      if (error.code !== 'ENOENT') throw error; // swept between the listing and the stat
    }
  }
  return total;
}
