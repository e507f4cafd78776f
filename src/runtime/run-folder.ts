/**
 * Training run folders: `<run dir>/checkpoint-<step>/`, each a PEFT adapter folder plus trainer
 * files. A checkpoint is complete once its trainer_state.json is there; folders being written are
 * named `.checkpoint-<step>.tmp-*` and never count.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../io/errors.js';
import { ADAPTER_CONFIG } from '../lora/adapter-config.js';

export const TRAINER_STATE = 'trainer_state.json';
const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;

function isDirectory(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/** `checkpoint-<step>` folders of a run, as [step, folder], unsorted; complete or not. */
function checkpointFolders(runDir: string): [number, string][] {
  let entries: string[];
  try {
    entries = fs.readdirSync(runDir);
  } catch {
    return [];
  }
  return entries.flatMap((name): [number, string][] => {
    const m = CHECKPOINT_NAME.exec(name);
    const dir = path.join(runDir, name);
    return m && isDirectory(dir) ? [[Number(m[1]), dir]] : [];
  });
}

/** The complete checkpoints (those with trainer_state.json) of a run folder, oldest first. */
export function listCheckpoints(runDir: string): { step: number; dir: string }[] {
  return checkpointFolders(runDir)
    .filter(([, dir]) => fs.existsSync(path.join(dir, TRAINER_STATE)))
    .sort((a, b) => a[0] - b[0])
    .map(([step, dir]) => ({ step, dir }));
}

/** The complete checkpoint with the highest step in `runDir`, or undefined when there is none. */
export function latestCheckpoint(runDir: string): string | undefined {
  return listCheckpoints(runDir).at(-1)?.dir;
}

/** Whether `dir` holds an adapter_config.json (a PEFT adapter folder or a checkpoint folder). */
export function isAdapterFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, ADAPTER_CONFIG));
}

/**
 * The adapter folder `p` names: a PEFT folder or a checkpoint folder is itself, a run folder is its
 * latest complete checkpoint. Anything else is an InputError that says what was expected.
 */
export function resolveAdapterPath(p: string): string {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (st === undefined) throw new InputError(`${p}: does not exist; expected a PEFT adapter folder, a checkpoint folder or a run folder`);
  if (!st.isDirectory()) throw new InputError(`${p}: is a file; expected a PEFT adapter folder, a checkpoint folder or a run folder`);
  if (isAdapterFolder(p)) return p;
  const latest = latestCheckpoint(p);
  if (latest !== undefined) {
    if (!isAdapterFolder(latest)) throw new InputError(`${latest}: the run's latest checkpoint holds no ${ADAPTER_CONFIG}`);
    return latest;
  }
  const incomplete = checkpointFolders(p);
  if (incomplete.length > 0) {
    throw new InputError(`${p}: no complete checkpoint in this run folder (checkpoint-<step>/ folders without ${TRAINER_STATE}: `
      + `${incomplete.map(([, d]) => path.basename(d)).sort().join(', ')})`);
  }
  throw new InputError(`${p}: neither a PEFT adapter folder (no ${ADAPTER_CONFIG}) nor a run folder (no checkpoint-<step>/ `
    + `with ${TRAINER_STATE})`);
}
