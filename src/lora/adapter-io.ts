/**
 * PEFT adapter folders: adapter_config.json + adapter_model.safetensors (or adapter_model.bin),
 * written so that `PeftModel.from_pretrained` loads them and read whether PEFT or ditty wrote them.
 */
import type { AdapterWeight } from '../engine/engine.js';
import type * as tf from '@tensorflow/tfjs-core';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomic } from '../io/atomic.js';
import { float32Bytes } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import { parseJson } from '../io/json.js';
import { writeFolderAtomic } from '../io/output-folder.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors-writer.js';
import type { TensorSource } from '../io/tensor-source.js';
import { TorchCheckpointFile } from '../io/torch-checkpoint.js';
import { describeLinears } from '../io/module-names.js';
import type { LinearLayer } from '../models/types.js';
import { moduleRankAndScaling, PEFT_LORA_DEFAULTS, validateLoraConfig, type LoraConfig } from './config.js';
import { injectLora, type LoraLinear } from './lora-linear.js';
import { isTarget } from './match.js';
import { PyFloat, pythonJsonDumps, type PyJson } from '../io/python-json.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_SAFETENSORS = 'adapter_model.safetensors';
export const ADAPTER_BIN = 'adapter_model.bin';
/** Files an adapter folder may hold; saving replaces a folder that holds nothing else. */
const ADAPTER_FOLDER_FILES = new Set([ADAPTER_CONFIG, ADAPTER_SAFETENSORS, ADAPTER_BIN, 'README.md']);
const KEY_PREFIX = 'base_model.model.';

export interface AdapterMeta {
  /** base_model_name_or_path (a hub id or a local path) */
  readonly baseModelNameOrPath?: string | null;
  readonly revision?: string | null;
}

/** `base_model.model.<path>.lora_A.weight` / `.lora_B.weight` */
export function adapterKey(modulePath: string, which: 'A' | 'B'): string {
  return `${KEY_PREFIX}${modulePath}.lora_${which}.weight`;
}

/** The trainable A and B of each layer under its adapter key (what optimizer state and checkpoints are keyed by). */
export function adapterVariables(layers: readonly LoraLinear[]): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const l of layers) {
    out.set(adapterKey(l.path, 'A'), l.loraA);
    out.set(adapterKey(l.path, 'B'), l.loraB);
  }
  return out;
}

/**
 * adapter_config.json as PEFT's save_pretrained writes it (sorted keys, indent 2, no final newline),
 * with the LoraConfig fields of PEFT 0.8 — the first version with use_rslora — so that every PEFT
 * from 0.8 on loads it (later versions fill in their newer fields with defaults).
 */
export function adapterConfigJson(config: LoraConfig, meta: AdapterMeta = {}): string {
  const obj: Record<string, PyJson> = {
    alpha_pattern: { ...(config.alphaPattern ?? {}) },
    auto_mapping: null,
    base_model_name_or_path: meta.baseModelNameOrPath ?? null,
    bias: config.bias,
    fan_in_fan_out: config.fanInFanOut,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: config.layersPattern === undefined ? null : toPy(config.layersPattern),
    layers_to_transform: config.layersToTransform === undefined ? null : toPy(config.layersToTransform),
    loftq_config: {},
    lora_alpha: config.alpha,
    lora_dropout: new PyFloat(config.dropout),
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: config.r,
    rank_pattern: { ...(config.rankPattern ?? {}) },
    revision: meta.revision ?? null,
    target_modules: toPy(config.targetModules),
    task_type: 'CAUSAL_LM',
    use_rslora: config.useRslora,
  };
  return pythonJsonDumps(obj);
}

function toPy(v: string | number | readonly string[] | readonly number[]): PyJson {
  return typeof v === 'object' ? [...v] : v;
}

/**
 * Writes `dir` as a PEFT adapter folder. Everything is written into a temporary sibling folder that
 * is renamed to `dir` at the end, so `dir` never holds half an adapter. An existing `dir` is
 * replaced only if it holds nothing but adapter files.
 */
export async function saveAdapter(dir: string, layers: readonly LoraLinear[], config: LoraConfig, meta: AdapterMeta = {}): Promise<void> {
  await checkReplaceable(dir);
  await writeFolderAtomic(dir, (tmp) => writeAdapterFiles(tmp, adapterTensorsOf(layers), config, meta));
}

/** Copies of the layers' A and B under their adapter keys, A then B per layer. */
export function adapterTensorsOf(layers: readonly LoraLinear[]): AdapterWeight[] {
  return layers.flatMap((l) => {
    const { a, b } = l.weights();
    return [
      { name: adapterKey(l.path, 'A'), shape: [l.r, l.inFeatures] as const, values: a },
      { name: adapterKey(l.path, 'B'), shape: [l.outFeatures, l.r] as const, values: b },
    ];
  });
}

/** Write adapter_config.json and adapter_model.safetensors into an existing folder (each file atomically). */
export async function writeAdapterFiles(dir: string, adapter: readonly AdapterWeight[], config: LoraConfig, meta: AdapterMeta = {}): Promise<void> {
  validateLoraConfig(config);
  if (adapter.length === 0) throw new InputError(`${dir}: no LoRA layers to save`);
  const tensors: TensorToWrite[] = adapter.map((t) => ({ name: t.name, dtype: 'F32', shape: [...t.shape], data: float32Bytes(t.values) }));
  await writeBytesAtomic(path.join(dir, ADAPTER_CONFIG), adapterConfigJson(config, meta));
  await writeSafetensors(path.join(dir, ADAPTER_SAFETENSORS), tensors, { format: 'pt' });
}

async function checkReplaceable(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new InputError(`${dir}: exists and is not a folder; cannot save an adapter there`);
    throw err;
  }
  const others = entries.filter((e) => !ADAPTER_FOLDER_FILES.has(e));
  if (others.length > 0) {
    throw new InputError(`${dir}: the folder holds files that are not part of an adapter (${others.slice(0, 5).join(', ')}`
      + `${others.length > 5 ? ', ...' : ''}); choose another output folder`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface AdapterTensor {
  readonly key: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** One module's weights as found in the file (either may be missing until checked). */
export interface AdapterModule {
  readonly a?: AdapterTensor;
  readonly b?: AdapterTensor;
}

export interface AdapterFiles {
  readonly dir: string;
  readonly config: LoraConfig;
  /** whether adapter_config.json named target_modules (false: null, so they come from the keys) */
  readonly targetsFromConfig: boolean;
  /** base_model_name_or_path, null when absent or empty */
  readonly baseModelNameOrPath: string | null;
  /** the hub revision of the base model, null when absent or empty */
  readonly revision: string | null;
  /** the weight file read (safetensors or bin) */
  readonly weightsFile: string;
  /** module path -> weights, in file order */
  readonly modules: ReadonlyMap<string, AdapterModule>;
}

/** Reads and checks adapter_config.json, then every tensor of the weight file. Nothing about a model yet. */
export async function readAdapter(dir: string): Promise<AdapterFiles> {
  const configFile = path.join(dir, ADAPTER_CONFIG);
  const { config, targetsFromConfig, baseModelNameOrPath, revision } = parseAdapterConfig(configFile, readText(configFile));
  const { file, source } = await openWeights(dir);
  try {
    const modules = new Map<string, { a?: AdapterTensor; b?: AdapterTensor }>();
    for (const key of source.names()) {
      const { modulePath, which } = parseKey(file, key);
      const m = modules.get(modulePath) ?? {};
      const slot = which === 'A' ? 'a' : 'b';
      if (m[slot]) throw new InputError(`${file}: lora_${which} of ${modulePath} is stored twice (${m[slot].key} and ${key})`);
      m[slot] = { key, shape: source.info(key).shape, data: source.readFloat32(key) };
      modules.set(modulePath, m);
    }
    if (modules.size === 0) throw new InputError(`${file}: holds no LoRA weights`);
    const resolved = targetsFromConfig ? config : { ...config, targetModules: [...modules.keys()] };
    return { dir, config: resolved, targetsFromConfig, baseModelNameOrPath, revision, weightsFile: file, modules };
  } finally {
    source.close();
  }
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT'
      ? `${file}: not found; an adapter folder holds ${ADAPTER_CONFIG} and ${ADAPTER_SAFETENSORS} (or ${ADAPTER_BIN})`
      : `${file}: cannot read: ${(err as Error).message}`);
  }
}

async function openWeights(dir: string): Promise<{ file: string; source: TensorSource }> {
  const st = path.join(dir, ADAPTER_SAFETENSORS);
  if (fs.existsSync(st)) return { file: st, source: SafetensorsFile.open(st) };
  const bin = path.join(dir, ADAPTER_BIN);
  if (fs.existsSync(bin)) return { file: bin, source: await TorchCheckpointFile.open(bin) };
  throw new InputError(`${dir}: holds neither ${ADAPTER_SAFETENSORS} nor ${ADAPTER_BIN}`);
}

/** `base_model.model.<path>.lora_A[.default][.weight]` -> path and A/B. */
function parseKey(file: string, key: string): { modulePath: string; which: 'A' | 'B' } {
  const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?(?:\.weight)?$/.exec(key);
  if (!m) {
    throw new InputError(`${file}: key "${key}" is not a LoRA weight ditty can load; expected `
      + `${KEY_PREFIX}<module path>.lora_A.weight and .lora_B.weight (plain LoRA on linear layers only)`);
  }
  return { modulePath: m[1]!, which: m[2] as 'A' | 'B' };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Parses adapter_config.json into a LoraConfig, refusing PEFT features ditty does not implement. */
export function parseAdapterConfig(file: string, text: string): {
  config: LoraConfig; targetsFromConfig: boolean; baseModelNameOrPath: string | null; revision: string | null;
} {
  const raw = parseJson(text, file) as Json;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError(`${file}: expected a JSON object`);
  const obj = raw;
  const fail = (msg: string): never => { throw new InputError(`${file}: ${msg}`); };
  const get = (key: string): Json | undefined => obj[key];
  const num = (key: string, fallback?: number): number => {
    const v = get(key) ?? fallback;
    return typeof v === 'number' ? v : fail(`"${key}" must be a number, got ${JSON.stringify(v ?? null)}`);
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key) ?? fallback;
    return typeof v === 'boolean' ? v : fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
  };
  const numberMap = (key: string): Record<string, number> | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'number')) {
      return fail(`"${key}" must map module names to numbers`);
    }
    return Object.keys(v).length === 0 ? undefined : (v as Record<string, number>);
  };
  const strings = (key: string): readonly string[] | string | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'))) return v as string[] | string;
    return fail(`"${key}" must be a string or a list of strings`);
  };

  const peftType = get('peft_type');
  if (peftType !== 'LORA') fail(`this is a ${peftType === undefined ? 'config without "peft_type"' : `${JSON.stringify(peftType)} adapter`}; ditty loads LORA adapters only`);
  const unsupported: Array<[string, (v: Json) => boolean]> = [
    ['use_dora', (v) => v === true],
    ['modules_to_save', (v) => Array.isArray(v) && v.length > 0],
    ['layer_replication', (v) => v !== null],
    ['lora_bias', (v) => v === true],
    ['target_parameters', (v) => Array.isArray(v) && v.length > 0],
    ['trainable_token_indices', (v) => v !== null],
  ];
  for (const [key, used] of unsupported) {
    const v = get(key);
    if (v !== undefined && used(v)) fail(`"${key}": ${JSON.stringify(v)} is not supported by ditty`);
  }
  const bias = get('bias') ?? 'none';
  if (bias !== 'none') fail(`"bias": ${JSON.stringify(bias)} is not supported (only "none")`);
  if (bool('fan_in_fan_out', false)) fail('"fan_in_fan_out": true is not supported (RWKV and GPT-NeoX store weights [out, in])');

  const layersToTransform = get('layers_to_transform');
  if (!(layersToTransform === undefined || layersToTransform === null || Number.isInteger(layersToTransform)
    || (Array.isArray(layersToTransform) && layersToTransform.every((x) => Number.isInteger(x))))) {
    fail('"layers_to_transform" must be null, an integer or a list of integers');
  }
  const targets = strings('target_modules');
  const nonEmpty = (key: string): string | null => {
    const v = get(key);
    return typeof v === 'string' && v !== '' ? v : null;
  };
  const config: LoraConfig = {
    r: num('r'),
    alpha: num('lora_alpha', PEFT_LORA_DEFAULTS.alpha),
    dropout: num('lora_dropout', PEFT_LORA_DEFAULTS.dropout),
    targetModules: targets ?? [],
    useRslora: bool('use_rslora', PEFT_LORA_DEFAULTS.useRslora),
    bias: 'none',
    fanInFanOut: false,
    rankPattern: numberMap('rank_pattern'),
    alphaPattern: numberMap('alpha_pattern'),
    layersToTransform: (layersToTransform ?? undefined) as number | number[] | undefined,
    layersPattern: strings('layers_pattern'),
  };
  if (targets !== undefined) validateLoraConfig(config, file);
  else validateLoraConfig({ ...config, targetModules: ['(from keys)'] }, file);
  return {
    config, targetsFromConfig: targets !== undefined,
    baseModelNameOrPath: nonEmpty('base_model_name_or_path'), revision: nonEmpty('revision'),
  };
}

// ---------------------------------------------------------------------------------------------
// Checking against a model

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
      + `Expected ${KEY_PREFIX}<linear path>.lora_A.weight / .lora_B.weight.\n${describeLinears(linears)}`);
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
