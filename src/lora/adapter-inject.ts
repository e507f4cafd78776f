/** An adapter folder put into a model: its modules' linears wrapped in LoraLinears holding the saved A and B. */
import type { LinearLayer } from '../models/types.js';
import { checkAdapter } from './adapter-check.js';
import { readAdapter, type AdapterFiles } from './adapter-files.js';
import type { LoraConfig } from './config.js';
import { injectLora, type LoraLinear } from './lora-linear.js';

export interface LoadedAdapter {
  readonly config: LoraConfig;
  readonly baseModelNameOrPath: string | null;
  readonly layers: LoraLinear[];
}

/**
 * Reads the adapter in `dir`, checks it against the model's linears and wraps each adapted linear in
 * a LoraLinear holding the loaded A and B (replacing it in `linears`). `seed` keys dropout masks if
 * training continues.
 */
export async function loadAdapter(dir: string, linears: Map<string, LinearLayer>, seed = 0): Promise<LoadedAdapter> {
  return injectAdapter(await readAdapter(dir), linears, seed);
}

/** loadAdapter for an adapter already read. */
export function injectAdapter(adapter: AdapterFiles, linears: Map<string, LinearLayer>, seed = 0): LoadedAdapter {
  const checked = checkAdapter(adapter, linears);
  const initial = new Map(checked.map((m) => [m.path, { a: m.a, b: m.b }]));
  const config: LoraConfig = { ...adapter.config, targetModules: checked.map((m) => m.path), layersToTransform: undefined, layersPattern: undefined };
  const layers = injectLora(linears, config, seed, { initial });
  return { config: adapter.config, baseModelNameOrPath: adapter.baseModelNameOrPath, layers };
}
