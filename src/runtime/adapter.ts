/** Putting a saved LoRA adapter (PEFT folder, checkpoint or run folder) onto an opened model. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DATA_FORMATS } from '../config/schema.js';
import type { DataFormat } from '../data/templates.js';
import { repoFolderName, repoIdProblem } from '../hub/index.js';
import { readAdapter, type AdapterFiles } from '../lora/adapter-files.js';
import { injectAdapter } from '../lora/adapter-inject.js';
import type { LoraLinear } from '../lora/lora-linear.js';
import type { OpenedModel } from './open-model.js';
import { resolveAdapterPath } from './run-folder.js';

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
 * Reads the adapter `adapterPath` names (a PEFT folder, a checkpoint folder, or a run folder: its
 * latest complete checkpoint; see resolveAdapterPath). Read before the model is opened, so that a
 * broken adapter is refused before the weights are loaded.
 */
export function readAdapterAt(adapterPath: string): Promise<AdapterFiles> {
  return readAdapter(resolveAdapterPath(adapterPath));
}

/**
 * Warns on stderr when `adapter` was trained on another base model than the opened one, and wraps
 * the adapted linears of the model in LoraLinear layers holding the adapter's weights.
 */
export function applyAdapter(opened: Pick<OpenedModel, 'name' | 'folder' | 'model'>, adapter: AdapterFiles): AppliedAdapter {
  warnIfOtherBase(adapter, opened);
  const { layers } = injectAdapter(adapter, opened.model.linears);
  const baseModel = adapter.baseModelNameOrPath ?? undefined;
  return { folder: adapter.dir, ...(baseModel !== undefined ? { baseModel } : {}), layers };
}

/** Warns on stderr when `adapter` was trained on another base model than `model`. */
export function warnIfOtherBase(adapter: AdapterFiles, model: { readonly name: string; readonly folder: string }): void {
  const baseModel = adapter.baseModelNameOrPath ?? undefined;
  if (baseModel !== undefined && !isSameBaseModel(baseModel, model)) {
    process.stderr.write(`ditty: warning: the adapter in ${adapter.dir} was trained on ${baseModel}, not on ${model.name}\n`);
  }
}

/**
 * The data format (and so the prompt template) an adapter was trained with, from the run's
 * config.yaml beside it (checkpoints and the final adapter/ folder hold one); undefined when there
 * is none or it does not say.
 */
export function trainedFormat(adapterDir: string): DataFormat | undefined {
  let config: unknown;
  try {
    config = parseYaml(fs.readFileSync(path.join(adapterDir, 'config.yaml'), 'utf8'));
  } catch {
    return undefined;
  }
  const data = typeof config === 'object' && config !== null ? (config as { data?: unknown }).data : undefined;
  const format = typeof data === 'object' && data !== null ? (data as { format?: unknown }).format : undefined;
  return DATA_FORMATS.find((f) => f === format);
}
