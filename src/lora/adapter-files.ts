/**
 * PEFT adapter folders: adapter_config.json + adapter_model.safetensors (or adapter_model.bin),
 * written so that `PeftModel.from_pretrained` loads them and read whether PEFT or ditty wrote them;
 * and the PEFT names of the weights in them.
 */
import type { AdapterWeight } from '../engine/engine.js';
import type * as tf from '@tensorflow/tfjs-core';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomic } from '../io/atomic.js';
import { float32Bytes } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import { writeFolderAtomic } from '../io/output-folder.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors-writer.js';
import type { TensorSource } from '../io/tensor-source.js';
import { TorchCheckpointFile } from '../io/torch-checkpoint.js';
import { ADAPTER_CONFIG, adapterConfigJson, parseAdapterConfig, type AdapterMeta } from './adapter-config.js';
import { validateLoraConfig, type LoraConfig } from './config.js';
import type { LoraLinear } from './lora-linear.js';

export const ADAPTER_SAFETENSORS = 'adapter_model.safetensors';
export const ADAPTER_BIN = 'adapter_model.bin';
/** Files an adapter folder may hold; saving replaces a folder that holds nothing else. */
const ADAPTER_FOLDER_FILES = new Set([ADAPTER_CONFIG, ADAPTER_SAFETENSORS, ADAPTER_BIN, 'README.md']);
const KEY_PREFIX = 'base_model.model.';

// ---------------------------------------------------------------------------------------------
// Weight names

/** `base_model.model.<path>.lora_A.weight` / `.lora_B.weight` */
export function adapterKey(modulePath: string, which: 'A' | 'B'): string {
  return `${KEY_PREFIX}${modulePath}.lora_${which}.weight`;
}

/** `base_model.model.<path>.lora_A[.default][.weight]` -> path and A/B. */
function parseKey(file: string, key: string): { modulePath: string; which: 'A' | 'B' } {
  const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?(?:\.weight)?$/.exec(key);
  if (!m) {
    throw new InputError(`${file}: key "${key}" is not a LoRA weight ditty can load; expected `
      + `${adapterKey('<module path>', 'A')} and .lora_B.weight (plain LoRA on linear layers only)`);
  }
  return { modulePath: m[1]!, which: m[2] as 'A' | 'B' };
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

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Writes `dir` as a PEFT adapter folder. Everything is written into a temporary sibling folder that
 * is renamed to `dir` at the end, so `dir` never holds half an adapter. An existing `dir` is
 * replaced only if it holds nothing but adapter files.
 */
export async function saveAdapter(dir: string, layers: readonly LoraLinear[], config: LoraConfig, meta: AdapterMeta = {}): Promise<void> {
  await checkReplaceable(dir);
  await writeFolderAtomic(dir, (tmp) => writeAdapterFiles(tmp, adapterTensorsOf(layers), config, meta));
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
  /** the LoRA settings; with target_modules null in the file, targetModules lists the modules the keys name */
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
