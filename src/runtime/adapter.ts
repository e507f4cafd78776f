/** Putting a saved LoRA adapter (PEFT folder, checkpoint or run folder) onto an opened model. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoFolderName, repoIdProblem } from '../hub/index.js';
import { InputError } from '../io/errors.js';
import { ADAPTER_CONFIG, loadAdapter } from '../lora/adapter-io.js';
import type { LoraLinear } from '../lora/lora-linear.js';
import type { OpenedModel } from './open-model.js';
import { resolveAdapterPath } from './run-folder.js';

export interface AdapterMetaInfo {
  /** base_model_name_or_path: a hub repo id or a local path, when the adapter names one */
  readonly baseModel?: string;
  /** the hub revision of the base model, when recorded */
  readonly revision?: string;
}

/** base_model_name_or_path and revision from `dir`/adapter_config.json (the rest is checked when loading). */
export function readAdapterMeta(dir: string): AdapterMetaInfo {
  const file = path.join(dir, ADAPTER_CONFIG);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputError(`${file}: cannot read the adapter config: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError(`${file}: expected a JSON object`);
  const { base_model_name_or_path: base, revision } = json as Record<string, unknown>;
  return {
    ...(typeof base === 'string' && base !== '' ? { baseModel: base } : {}),
    ...(typeof revision === 'string' && revision !== '' ? { revision } : {}),
  };
}

function realpath(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Whether `adapterBase` (base_model_name_or_path) names the model the user opened as `name`, found
 * in `folder`: the same string, the same local folder, or a hub id whose HF-cache snapshot `folder` is.
 */
export function isSameBaseModel(adapterBase: string, model: { readonly name: string; readonly folder: string }): boolean {
  if (adapterBase === model.name) return true;
  const folder = realpath(model.folder);
  const local = realpath(adapterBase);
  if (local !== undefined) return local === folder;
  if (repoIdProblem(adapterBase) !== undefined || folder === undefined) return false;
  return folder.split(path.sep).includes(repoFolderName({ type: 'model', name: adapterBase }));
}

export interface AppliedAdapter {
  /** the adapter folder that was loaded (a run folder resolves to its latest checkpoint) */
  readonly folder: string;
  readonly baseModel?: string;
  readonly layers: LoraLinear[];
}

/**
 * Resolves `adapterPath` (see resolveAdapterPath), warns on stderr when the adapter was trained on
 * another base model than the opened one, and wraps the adapted linears of the model in LoraLinear
 * layers holding the adapter's weights.
 */
export async function applyAdapter(opened: Pick<OpenedModel, 'name' | 'folder' | 'model'>, adapterPath: string): Promise<AppliedAdapter> {
  const folder = resolveAdapterPath(adapterPath);
  const { baseModel } = readAdapterMeta(folder);
  if (baseModel !== undefined && !isSameBaseModel(baseModel, opened)) {
    process.stderr.write(`ditty: warning: the adapter in ${folder} was trained on ${baseModel}, not on ${opened.name}\n`);
  }
  const { layers } = await loadAdapter(folder, opened.model.linears);
  return { folder, ...(baseModel !== undefined ? { baseModel } : {}), layers };
}
