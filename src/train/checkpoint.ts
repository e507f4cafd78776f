import * as fs from 'node:fs';
import type { AdapterWeight } from '../engine/engine.js';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fsyncDir, writeBytesAtomic } from '../io/atomic.js';
import { float32Bytes } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import { faultPoint } from '../io/fault-injection.js';
import { makeFolder } from '../io/make-folder.js';
import { deleteFolder, removeFolder, writeFolderAtomic } from '../io/output-folder.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors-writer.js';
import { ADAPTER_CONFIG, parseAdapterConfig, type AdapterMeta } from '../lora/adapter-config.js';
import { ADAPTER_SAFETENSORS, writeAdapterFiles } from '../lora/adapter-files.js';
import type { LoraConfig } from '../lora/config.js';
import { listCheckpoints, TRAINER_STATE } from '../runtime/run-folder.js';
import type { AdamWSlot } from '../runtime/tfjs-adamw.js';
import { readTrainerState, type TrainerState } from '../runtime/trainer-state.js';

const OPTIMIZER_FILE = 'optimizer.safetensors';
const CONFIG_FILE = 'config.yaml';

export type { LogEntry, TrainerState } from '../runtime/trainer-state.js';

export interface CheckpointContents {
  readonly state: TrainerState;
  readonly adapter: readonly AdapterWeight[];
  readonly loraConfig: LoraConfig;
  readonly adapterMeta: AdapterMeta;
  readonly optimizer: ReadonlyMap<string, AdamWSlot>;
  readonly configYaml: string;
}

/**
 * Write `<runDir>/checkpoint-<step>/` whole or not at all: every file goes into a hidden temporary
 * folder, is fsynced, and the folder is renamed into place. A crash leaves only the hidden folder,
 * which `cleanIncomplete` removes and `latestCheckpoint` never picks.
 */
export async function saveCheckpoint(runDir: string, c: CheckpointContents): Promise<string> {
  await makeFolder(runDir);
  const final = path.join(runDir, `checkpoint-${c.state.global_step}`);
  await writeFolderAtomic(final, async (tmp) => {
    await writeAdapterFiles(tmp, c.adapter, c.loraConfig, c.adapterMeta);
    const slots: TensorToWrite[] = [...c.optimizer].flatMap(([name, slot]) => [
      { name: `${name}.exp_avg`, dtype: 'F32', shape: [slot.expAvg.length], data: float32Bytes(slot.expAvg) },
      { name: `${name}.exp_avg_sq`, dtype: 'F32', shape: [slot.expAvgSq.length], data: float32Bytes(slot.expAvgSq) },
    ]);
    await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), slots, { format: 'pt', step: String(c.state.global_step) });
    await writeBytesAtomic(path.join(tmp, CONFIG_FILE), c.configYaml);
    // trainer_state.json last: its presence marks a complete checkpoint
    await writeBytesAtomic(path.join(tmp, TRAINER_STATE), `${JSON.stringify(c.state, null, 2)}\n`);
  });
  return final;
}

/** Remove hidden temporary folders left by a run that was killed while saving or pruning. */
export async function cleanIncomplete(runDir: string): Promise<number> {
  if (!fs.existsSync(runDir)) return 0;
  const stale = fs.readdirSync(runDir).filter((n) => n.startsWith('.checkpoint-') && n.includes('.tmp-'));
  for (const n of stale) await removeFolder(path.join(runDir, n));
  return stale.length;
}

/**
 * Checkpoints past `step` (all of them for a fresh run, step 0) and, for a fresh run, `earlierRun`
 * (its metrics, samples, final adapter): moved into `superseded-<time>/` so nothing is lost and two timelines never mix
 * (auto-resume and keep_last would otherwise pick or keep the abandoned one). Returns that folder, if any.
 */
export async function setAsideCheckpoints(runDir: string, earlierRun: readonly string[], step: number): Promise<string | undefined> {
  const old = listCheckpoints(runDir).filter((c) => c.step > step).map((c) => c.dir);
  if (step === 0) old.push(...earlierRun.filter((f) => fs.existsSync(f)));
  if (old.length === 0) return undefined;
  const aside = path.join(runDir, `superseded-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  faultPoint('mkdir', aside);
  await fsp.mkdir(aside);
  for (const p of old) {
    faultPoint('rename', p);
    await fsp.rename(p, path.join(aside, path.basename(p)));
  }
  await fsyncDir(runDir);
  return aside;
}

/** Keep the newest `keep` checkpoints (0 keeps all); a crash while pruning never leaves a half-deleted one under its name. */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  if (keep <= 0) return;
  const all = listCheckpoints(runDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) await deleteFolder(c.dir);
}

/** Why checkpoint `dir` cannot be resumed from (a file missing, truncated or not what it claims), or undefined. */
export function checkpointProblem(dir: string): string | undefined {
  try {
    readTrainerState(path.join(dir, TRAINER_STATE));
    const adapterConfig = path.join(dir, ADAPTER_CONFIG);
    parseAdapterConfig(adapterConfig, fs.readFileSync(adapterConfig, 'utf8'));
    // opening checks each header and that the file holds every byte it promises
    for (const f of [ADAPTER_SAFETENSORS, OPTIMIZER_FILE]) SafetensorsFile.open(path.join(dir, f)).close();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * The newest checkpoint of `runDir` that can be resumed from, warning about each newer one that
 * cannot (it stays where it is until the resumed run sets it aside); undefined when the run has
 * no checkpoint. Refuses when there are checkpoints and none of them is whole.
 */
export function resumableCheckpoint(runDir: string, warn: (message: string) => void): string | undefined {
  const all = listCheckpoints(runDir).reverse();
  const broken: string[] = [];
  for (const c of all) {
    const problem = checkpointProblem(c.dir);
    if (problem === undefined) {
      if (broken.length > 0) warn(`warning: resuming from ${c.dir}, the newest complete checkpoint: ${broken.join('; ')}`);
      return c.dir;
    }
    broken.push(`${c.dir} is damaged (${problem})`);
  }
  if (broken.length === 0) return undefined;
  throw new InputError(`${runDir}: no checkpoint can be resumed: ${broken.join('; ')}. `
    + 'Resume from another copy with --resume CHECKPOINT, or start over with --no-resume (the damaged ones are moved aside, not deleted)');
}

export interface LoadedCheckpoint {
  readonly dir: string;
  readonly state: TrainerState;
  /** adapter tensors by safetensors key */
  readonly adapter: Map<string, Float32Array>;
  readonly optimizer: Map<string, AdamWSlot>;
}

export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const stateFile = path.join(dir, TRAINER_STATE);
  if (!fs.existsSync(stateFile)) throw new InputError(`${dir}: not a complete ditty checkpoint (no ${TRAINER_STATE})`);
  const state = readTrainerState(stateFile);
  const adapter = readAll(path.join(dir, ADAPTER_SAFETENSORS));
  const optimizer = new Map<string, AdamWSlot>();
  const opt = readAll(path.join(dir, OPTIMIZER_FILE));
  for (const [key, values] of opt) {
    if (!key.endsWith('.exp_avg')) continue;
    const name = key.slice(0, -'.exp_avg'.length);
    const sq = opt.get(`${name}.exp_avg_sq`);
    if (!sq) throw new InputError(`${dir}/${OPTIMIZER_FILE}: "${name}.exp_avg_sq" is missing`);
    optimizer.set(name, { expAvg: values, expAvgSq: sq });
  }
  return { dir, state, adapter, optimizer };
}

function readAll(file: string): Map<string, Float32Array> {
  const f = SafetensorsFile.open(file);
  try {
    return new Map(f.names().map((n) => [n, f.readFloat32(n)]));
  } finally {
    f.close();
  }
}
