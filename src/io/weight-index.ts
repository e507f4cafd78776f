import { InputError } from './errors.js';
import { parseJson } from './json.js';

/** The weight layouts of a Hugging Face model folder, in order of preference. */
export const WEIGHT_LAYOUTS = [
  { kind: 'safetensors', single: 'model.safetensors', index: 'model.safetensors.index.json' },
  { kind: 'torch', single: 'pytorch_model.bin', index: 'pytorch_model.bin.index.json' },
] as const;

export type WeightFormat = (typeof WEIGHT_LAYOUTS)[number]['kind'];

export interface WeightIndex {
  /** tensor name -> shard file name (relative to the model folder) */
  readonly weightMap: ReadonlyMap<string, string>;
  /** distinct shard files in first-seen order */
  readonly files: readonly string[];
  readonly totalSize?: number;
}

/**
 * Parse `model.safetensors.index.json` / `pytorch_model.bin.index.json` text (or what `text()`
 * returns, so that a failure to read it is an InputError too).
 */
export function parseWeightIndex(text: string | (() => string), where: string): WeightIndex {
  const json = parseJson(text, where);
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new InputError(`${where}: expected an object with "weight_map": {tensor name: file name}`);
  }
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('..') || file.startsWith('/')) {
      throw new InputError(`${where}: weight_map["${name}"] must be a file name inside the model folder, got ${JSON.stringify(file)}`);
    }
    weightMap.set(name, file);
    if (!files.includes(file)) files.push(file);
  }
  const total = (json as { metadata?: { total_size?: unknown } }).metadata?.total_size;
  return { weightMap, files, ...(typeof total === 'number' ? { totalSize: total } : {}) };
}
