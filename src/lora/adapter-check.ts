/** An adapter read from its files, checked against the linear layers of a model. */
import { InputError } from '../io/errors.js';
import { describeLinears } from '../io/module-names.js';
import type { LinearLayer } from '../models/types.js';
import { ADAPTER_CONFIG } from './adapter-config.js';
import { adapterKey, type AdapterFiles, type AdapterTensor } from './adapter-files.js';
import { moduleRankAndScaling } from './config.js';
import { isTarget } from './match.js';

/** A verified module: weights with the shapes the model needs. */
export interface CheckedModule {
  readonly path: string;
  readonly r: number;
  readonly scaling: number;
  readonly a: Float32Array;
  readonly b: Float32Array;
}

const sameShape = (s: readonly number[], t: readonly number[]): boolean => s.length === t.length && s.every((d, i) => d === t[i]);

/**
 * Checks that every adapter key names a linear of the model with the right shapes, that each module
 * has both A and B, and that target_modules selects exactly the modules the file holds.
 */
export function checkAdapter(adapter: AdapterFiles, linears: ReadonlyMap<string, Pick<LinearLayer, 'inFeatures' | 'outFeatures'>>): CheckedModule[] {
  const file = adapter.weightsFile;
  const paths = [...adapter.modules.keys()];
  const unknown = paths.filter((p) => !linears.has(p));
  if (unknown.length === paths.length) {
    const scope = (p: string): string => p.split('.')[0]!;
    const scopes = (ps: Iterable<string>): string => [...new Set([...ps].map(scope))].map((s) => `${s}.*`).join(', ');
    const [theirs, ours] = [scopes(paths), scopes(linears.keys())];
    throw new InputError(`${file}: this adapter was made for a different base model: its keys look like ${theirs} `
      + `(e.g. ${adapterKey(paths[0]!, 'A')}), but this model's linear layers are ${ours}.\n${describeLinears(linears)}`);
  }
  if (unknown.length > 0) {
    const keys = unknown.slice(0, 5).map((p) => keyOf(adapter, p)).join(', ');
    throw new InputError(`${file}: ${unknown.length} key(s) name no linear layer of the model: ${keys}${unknown.length > 5 ? ', ...' : ''}. `
      + `Expected ${adapterKey('<linear path>', 'A')} / .lora_B.weight.\n${describeLinears(linears)}`);
  }
  const { config } = adapter;
  if (adapter.targetsFromConfig) {
    const selected = [...linears.keys()].filter((p) => isTarget(p, config.targetModules, config));
    const missing = selected.filter((p) => !adapter.modules.has(p));
    if (missing.length > 0) {
      const keys = missing.slice(0, 4).flatMap((p) => [adapterKey(p, 'A'), adapterKey(p, 'B')]).join(', ');
      throw new InputError(`${file}: missing keys for ${missing.length} module(s) that target_modules ${JSON.stringify(config.targetModules)} `
        + `selects: ${keys}${missing.length > 4 ? ', ...' : ''}`);
    }
    const extra = paths.filter((p) => !selected.includes(p));
    if (extra.length > 0) {
      throw new InputError(`${file}: key ${keyOf(adapter, extra[0]!)} is for ${extra[0]}, which target_modules `
        + `${JSON.stringify(config.targetModules)} in ${ADAPTER_CONFIG} does not select`);
    }
  }
  return paths.map((p) => {
    const m = adapter.modules.get(p)!;
    const linear = linears.get(p)!;
    if (!m.a || !m.b) throw new InputError(`${file}: missing key ${adapterKey(p, m.a ? 'B' : 'A')} (${p} has only lora_${m.a ? 'A' : 'B'})`);
    const { r, scaling } = moduleRankAndScaling(config, p);
    const expect = (t: AdapterTensor, shape: number[], dims: string): void => {
      if (!sameShape(t.shape, shape)) {
        throw new InputError(`${file}: ${t.key} has shape [${t.shape.join(', ')}], expected ${dims} = [${shape.join(', ')}] `
          + `(r from ${ADAPTER_CONFIG}, the rest from the model's ${p}: in ${linear.inFeatures}, out ${linear.outFeatures})`);
      }
    };
    expect(m.a, [r, linear.inFeatures], '[r, in]');
    expect(m.b, [linear.outFeatures, r], '[out, r]');
    return { path: p, r, scaling, a: m.a.data, b: m.b.data };
  });
}

function keyOf(adapter: AdapterFiles, p: string): string {
  const m = adapter.modules.get(p)!;
  return (m.a ?? m.b)!.key;
}
