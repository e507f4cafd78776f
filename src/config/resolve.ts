/**
 * From a schema-valid config to a resolved one: checks that span several keys, local paths made
 * absolute (relative to the config file's folder, or to the working directory for `--set` values and
 * defaults), hub ids checked, output.dir filled in.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as z from 'zod';
import { looksLikePath, repoIdProblem } from '../hub/repo.js';
import { shown } from '../io/json.js';
import type { KeyPath, Problem } from './problems.js';
import type { TrainConfig, TrainConfigSchema } from './schema.js';

type Parsed = z.output<typeof TrainConfigSchema>;

export interface ResolveContext {
  /** the folder a relative path at this key is relative to */
  readonly baseDir: (path: KeyPath) => string;
  /** the folder defaults such as checkpoints/ are relative to */
  readonly cwd: string;
}

const DATA_EXTENSIONS = ['.jsonl', '.json', '.parquet'];

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** A local path rather than a hub id: written like a path, or naming something that exists. */
function isLocal(value: string, baseDir: string, dataFile = false): boolean {
  const hasDataExtension = dataFile && DATA_EXTENSIONS.some((ext) => value.toLowerCase().endsWith(ext));
  return looksLikePath(value) || hasDataExtension || fs.existsSync(path.resolve(baseDir, value));
}

export function runName(nameOrPath: string): string {
  const base = path.basename(nameOrPath.replace(/[\\/]+$/, '')) || 'run';
  return base.replace(/[^A-Za-z0-9._-]+/g, '-');
}

/** Resolves the config, or returns every problem found. */
export function resolveConfig(parsed: Parsed, ctx: ResolveContext): { config: TrainConfig } | { problems: Problem[] } {
  const problems: Problem[] = [];
  const local = (key: KeyPath, value: string): string => path.resolve(ctx.baseDir(key), expandHome(value));
  const mustExist = (key: KeyPath, value: string, what: 'folder' | 'file' | 'path'): string => {
    const resolved = local(key, value);
    const st = fs.statSync(resolved, { throwIfNoEntry: false });
    const wrongKind = st !== undefined && ((what === 'folder' && !st.isDirectory()) || (what === 'file' && !st.isFile()));
    if (st === undefined || wrongKind) {
      const detail = resolved === value ? '' : ` (resolved to ${resolved})`;
      problems.push({ path: key, message: `${shown(value)} ${st === undefined ? 'does not exist' : `is not a ${what}`}${detail}; expected an existing ${what}` });
    }
    return resolved;
  };
  const hubId = (key: KeyPath, value: string): string => {
    const problem = repoIdProblem(value);
    if (problem !== undefined) {
      problems.push({ path: key, message: `${shown(value)} is neither an existing local path nor a hub repo id (${problem})` });
    }
    return value;
  };

  const { model, data, training, output } = parsed;
  const modelKey = ['model', 'name_or_path'];
  const nameOrPath = isLocal(model.name_or_path, ctx.baseDir(modelKey))
    ? mustExist(modelKey, model.name_or_path, 'folder')
    : hubId(modelKey, model.name_or_path);
  const tokenizer = model.tokenizer === undefined ? undefined : mustExist(['model', 'tokenizer'], model.tokenizer, 'path');

  const datasetKey = ['data', 'dataset'];
  const localDataset = isLocal(data.dataset, ctx.baseDir(datasetKey), true);
  const dataset = localDataset ? mustExist(datasetKey, data.dataset, 'path') : hubId(datasetKey, data.dataset);
  if (localDataset && fs.existsSync(dataset)) {
    const isFolder = fs.statSync(dataset).isDirectory();
    const dataFile = isFolder ? path.join(dataset, data.file) : dataset;
    if (isFolder && !fs.existsSync(dataFile)) {
      problems.push({ path: ['data', 'file'], message: `${shown(data.file)} is not in the dataset folder ${dataset}; expected a file inside it` });
    } else if (!DATA_EXTENSIONS.some((ext) => dataFile.toLowerCase().endsWith(ext))) {
      problems.push({ path: isFolder ? ['data', 'file'] : datasetKey, message: `${shown(isFolder ? data.file : data.dataset)} is not a .jsonl, .json or .parquet file; expected a data file in one of those formats` });
    }
  }
  if (data.format === 'text' && data.train_on === 'response') {
    problems.push({ path: ['data', 'train_on'], message: `"response" needs data.format dolly (the text format has no response); expected all` });
  }
  if (training.eval_every !== undefined && data.validation_fraction === 0) {
    problems.push({ path: ['training', 'eval_every'], message: `${training.eval_every} needs a validation set, but data.validation_fraction is 0; expected data.validation_fraction > 0 or no eval_every` });
  }
  const prompts = typeof parsed.eval.prompts === 'string' ? mustExist(['eval', 'prompts'], parsed.eval.prompts, 'file') : parsed.eval.prompts;
  if (problems.length > 0) return { problems };

  const dir = output.dir === undefined
    ? path.resolve(ctx.cwd, 'checkpoints', runName(nameOrPath))
    : local(['output', 'dir'], output.dir);
  const resolvedModel = { ...model, name_or_path: nameOrPath, ...(tokenizer === undefined ? {} : { tokenizer }) };
  return { config: { ...parsed, model: resolvedModel, data: { ...data, dataset }, output: { ...output, dir }, eval: { ...parsed.eval, prompts } } };
}
