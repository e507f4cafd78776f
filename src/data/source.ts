import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_DATASET, DEFAULT_DATASET_FILE } from '../config/schema.js';
import { downloadRepoFiles, repoIdProblem, type ProgressReporter } from '../hub/index.js';
import { InputError } from '../io/errors.js';

/** Data files of hub datasets that ditty knows, used when no file is named. */
export const DEFAULT_DATASET_FILES: Readonly<Record<string, string>> = { [DEFAULT_DATASET]: DEFAULT_DATASET_FILE };

export interface DatasetLocation {
  /** a local file, or a hub dataset id `org/name` */
  dataset: string;
  /** hub branch, tag or commit (default "main") */
  revision?: string;
  /** the data file inside the hub repo, or inside `dataset` when that is a local folder */
  file?: string;
  progress?: boolean | ProgressReporter;
}

export interface ResolvedDataset {
  /** local path of the data file */
  path: string;
  /** how to name the data in logs: the path, or "org/name@commit file" */
  description: string;
}

/** The local file to read: `dataset` itself when it exists, else its file fetched from the hub into the HF cache. */
export async function resolveDatasetFile(loc: DatasetLocation): Promise<ResolvedDataset> {
  const st = fs.statSync(loc.dataset, { throwIfNoEntry: false });
  if (st?.isFile()) return { path: loc.dataset, description: loc.dataset };
  if (st?.isDirectory()) {
    if (loc.file === undefined) throw new InputError(`${loc.dataset} is a folder: name the data file in it (file option)`);
    const p = path.join(loc.dataset, loc.file);
    if (!fs.existsSync(p)) throw new InputError(`${p}: no such dataset file`);
    return { path: p, description: p };
  }
  if (/\.(jsonl|json|parquet)$/i.test(loc.dataset)) throw new InputError(`${loc.dataset}: no such dataset file`);
  const problem = repoIdProblem(loc.dataset);
  if (problem !== undefined || path.isAbsolute(loc.dataset) || loc.dataset.startsWith('.')) {
    throw new InputError(`dataset ${JSON.stringify(loc.dataset)} is neither an existing file nor a Hugging Face dataset id (org/name)`);
  }
  const file = loc.file ?? DEFAULT_DATASET_FILES[loc.dataset];
  if (file === undefined) {
    throw new InputError(`datasets/${loc.dataset}: name the data file to use (file option), e.g. data/train.jsonl`);
  }
  const snapshot = await downloadRepoFiles({
    repo: { type: 'dataset', name: loc.dataset },
    revision: loc.revision,
    files: [file],
    progress: loc.progress,
  });
  return { path: path.join(snapshot.folder, file), description: `${loc.dataset}@${snapshot.commit.slice(0, 12)} ${file}` };
}
