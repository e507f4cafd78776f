import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../io/errors.js';

export const LOCK_FILE = '.ditty-train.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claim a run folder for this process, so two trainings never write (or clean up) the same
 * checkpoints. A lock left by a process that no longer runs (killed with -9) is taken over.
 * Returns the release function.
 */
export function lockRunFolder(runDir: string): () => void {
  fs.mkdirSync(runDir, { recursive: true });
  const file = path.join(runDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.rmSync(file);
        } catch { /* already gone */ }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(fs.readFileSync(file, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new InputError(`${runDir}: another ditty train (pid ${holder}) is using this output folder; `
          + 'wait for it to finish or choose another output.dir');
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new InputError(`${runDir}: could not take the run folder's lock (${file})`);
}
