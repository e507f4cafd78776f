/**
 * The run folder's lock: `<output.dir>/.ditty-train.lock` holds "<pid> <start time>" of the training
 * process, so two trainings never write (or clean up) the same checkpoints. A lock whose process is
 * gone (killed with -9, a zombie its parent has not reaped, or a pid since reused by another process)
 * is taken over; a holder that is exiting is waited for, so an immediate restart after a kill works.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../io/errors.js';
import { makeFolderSync } from '../io/make-folder.js';
import { processStartTime, processState } from '../io/process-state.js';

export const LOCK_FILE = '.ditty-train.lock';

/** How long a holder that is exiting is waited for; after that it runs none of its own code, so it no longer counts. */
const EXITING_WAIT_MS = 10_000;
/** How long a running holder is waited for before refusing (it may be releasing the lock at this moment). */
const RUNNING_WAIT_MS = 1_000;
/** A lock file without a pid (its writer was killed between creating and writing it) is stale after this. */
const UNREADABLE_STALE_MS = 2_000;
/** A takeover guard older than this was left by a process killed while taking over. */
const GUARD_STALE_MS = 5_000;
const POLL_MS = 20;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function ageMs(file: string): number {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  return st === undefined ? 0 : Date.now() - st.mtimeMs;
}

/** Creates `file` if it does not exist; false if it does. */
function createExclusive(file: string, content: string): boolean {
  try {
    fs.writeFileSync(file, content, { flag: 'wx' });
    return true;
  } catch (err) {
    if (code(err) === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Removes the lock if it still reads `seen` (the stale content judged by the caller). Processes
 * taking over at the same moment go one at a time through a guard file, so none of them removes a
 * lock another one has just created.
 */
function takeOver(file: string, seen: string): void {
  const guard = `${file}.takeover`;
  if (!createExclusive(guard, `${process.pid}\n`)) {
    if (ageMs(guard) > GUARD_STALE_MS) fs.rmSync(guard, { force: true });
    else sleepSync(POLL_MS);
    return;
  }
  try {
    if (read(file) === seen) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

type HolderState = 'running' | 'exiting' | 'gone';

function holderState(file: string, content: string): { state: HolderState; pid?: number; legacy?: boolean } {
  const m = /^(\d+)(?: (\d+))?\s*$/.exec(content);
  if (!m) return { state: ageMs(file) > UNREADABLE_STALE_MS ? 'gone' : 'exiting' };
  const pid = Number(m[1]);
  // our own pid: a lock this process took earlier and did not release (it never trains twice at once)
  if (pid === process.pid || pid === 0) return { state: 'gone' };
  return { state: processState(pid, m[2]), pid, legacy: m[2] === undefined };
}

/** Claims a run folder for this process; returns the release function (also run at exit). */
export function lockRunFolder(runDir: string): () => void {
  makeFolderSync(runDir);
  const file = path.join(runDir, LOCK_FILE);
  const start = processStartTime(process.pid);
  const me = `${process.pid}${start !== undefined ? ` ${start}` : ''}\n`;
  const began = Date.now();
  for (;;) {
    if (createExclusive(file, me)) return releaser(file, me);
    const seen = read(file);
    if (seen === undefined) continue;
    const holder = holderState(file, seen);
    const waited = Date.now() - began;
    if (holder.state === 'gone' || (holder.state === 'exiting' && waited >= EXITING_WAIT_MS)) {
      takeOver(file, seen);
      // bounded: only processes taking over at the same moment keep this loop going
      if (waited < EXITING_WAIT_MS + RUNNING_WAIT_MS) continue;
    } else if (holder.state === 'exiting' || waited < RUNNING_WAIT_MS) {
      sleepSync(POLL_MS);
      continue;
    }
    throw new InputError(`${runDir}: another ditty train (pid ${holder.pid ?? '?'}) is using this output folder; `
      + `wait for it to finish or choose another output.dir${holder.legacy ? ` (if no ditty train runs there, delete ${file})` : ''}`);
  }
}

function releaser(file: string, me: string): () => void {
  const release = (): void => {
    process.off('exit', release);
    try {
      if (fs.readFileSync(file, 'utf8') === me) fs.rmSync(file);
    } catch { /* already gone */ }
  };
  process.on('exit', release);
  return release;
}
