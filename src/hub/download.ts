/**
 * The hub's entry points: fetch a model (config, tokenizer files, weights) or named files of any repo
 * into the standard Hugging Face cache, or find them there; or take a local model folder as it is.
 * What to fetch is plan.ts, fetching and the cache snapshot.ts, the messages of failures errors.ts.
 */
import { statSync } from 'node:fs';
import { InputError } from '../io/errors.js';
import { explicitPlan, modelFilePlan } from './plan.js';
import { looksLikePath, repoIdProblem, repoLabel, type RepoRef, type RepoType } from './repo.js';
import { fetchSnapshot, type DownloadOptions, type SnapshotResult } from './snapshot.js';

export type { DownloadOptions, SnapshotResult } from './snapshot.js';

export interface RepoFilesRequest extends DownloadOptions {
  repo: RepoRef;
  /** repo paths, e.g. ["databricks-dolly-15k.jsonl"]; all must exist */
  files: readonly string[];
}

export interface ModelFolderOptions extends DownloadOptions {
  /** 'model' (default): config, tokenizer files, weights; or an explicit list of repo paths */
  files?: 'model' | readonly string[];
  /** default 'model' */
  repoType?: RepoType;
}

/**
 * Fetch `files` of any repo (model or dataset) into the cache and return the snapshot. A commit-hash
 * revision whose files are all cached is served without asking the hub.
 */
export async function downloadRepoFiles(req: RepoFilesRequest): Promise<SnapshotResult> {
  return fetchSnapshot(req.repo, explicitPlan(req.files), req, true);
}

/** Fetch what a model needs (config, tokenizer files, weights) into the cache and return the snapshot. */
export async function downloadModel(name: string, opts: DownloadOptions = {}): Promise<SnapshotResult> {
  return fetchSnapshot({ type: 'model', name }, modelFilePlan, opts, false);
}

/**
 * A model folder to load from: `nameOrPath` itself when it is an existing local folder (no network),
 * else the cache snapshot of the hub repo `org/name`, fetched as needed.
 */
export async function resolveModelFolder(nameOrPath: string, opts: ModelFolderOptions = {}): Promise<string> {
  const st = statSync(nameOrPath, { throwIfNoEntry: false });
  if (st?.isDirectory()) return nameOrPath;
  if (st !== undefined) throw new InputError(`${nameOrPath} is a file: expected a model folder or a Hugging Face repo id (org/name)`);
  if (looksLikePath(nameOrPath)) throw new InputError(`model folder ${nameOrPath} does not exist`);
  const problem = repoIdProblem(nameOrPath);
  if (problem !== undefined) {
    throw new InputError(`${JSON.stringify(nameOrPath)} is neither an existing folder nor a Hugging Face repo id (org/name): ${problem}`);
  }
  const repo: RepoRef = { type: opts.repoType ?? 'model', name: nameOrPath };
  const files = opts.files ?? 'model';
  if (files === 'model' && repo.type !== 'model') {
    throw new InputError(`${repoLabel(repo)}: files 'model' needs a model repo; name the files to fetch from a ${repo.type}`);
  }
  const result = files === 'model'
    ? await fetchSnapshot(repo, modelFilePlan, opts, false)
    : await fetchSnapshot(repo, explicitPlan(files), opts, true);
  return result.folder;
}
