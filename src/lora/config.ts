/** LoRA hyper-parameters with PEFT's meaning, and the defaults for the architectures ditty trains. */
import { DEFAULT_TARGET_MODULES, LORA_DEFAULTS, type LoraSection } from '../config/schema.js';
import { InputError } from '../io/errors.js';
import type { Architecture } from '../models/types.js';
import { patternValue, type TargetModules } from './match.js';

/**
 * A LoRA adapter's settings in PEFT's terms. The fields that the config file's lora section also
 * has take its types (config/schema.ts); the rest are PEFT's, met when reading PEFT adapters.
 */
export interface LoraConfig {
  /** rank */
  readonly r: LoraSection['r'];
  /** lora_alpha: the update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA) */
  readonly alpha: LoraSection['alpha'];
  /** lora_dropout: dropout probability on the adapter's input while training */
  readonly dropout: LoraSection['dropout'];
  /** the config's list of names, or (PEFT) one regex string that must match a whole module path */
  readonly targetModules: TargetModules;
  readonly useRslora: LoraSection['use_rslora'];
  /** Only "none" is supported: biases stay frozen. */
  readonly bias: 'none';
  /** Only false: Hugging Face RWKV and GPT-NeoX store weights [out, in]. */
  readonly fanInFanOut: false;
  /** PEFT rank_pattern: module-name pattern -> rank for the modules it matches. */
  readonly rankPattern?: Readonly<Record<string, number>>;
  /** PEFT alpha_pattern: module-name pattern -> alpha for the modules it matches. */
  readonly alphaPattern?: Readonly<Record<string, number>>;
  /** PEFT layers_to_transform: only these layer indices (list targets only). */
  readonly layersToTransform?: readonly number[] | number;
  /** PEFT layers_pattern: the name of the layer list (e.g. "blocks"), used with layersToTransform. */
  readonly layersPattern?: readonly string[] | string;
}

/**
 * PEFT's own LoraConfig defaults (r 8, lora_alpha 8, no dropout): what a PEFT adapter_config.json
 * means when it leaves a key out. ditty's defaults for training are the config schema's (LORA_DEFAULTS).
 */
export const PEFT_LORA_DEFAULTS = {
  r: 8, alpha: 8, dropout: 0, useRslora: false, bias: 'none', fanInFanOut: false,
} as const satisfies Omit<LoraConfig, 'targetModules'>;

/** The config's lora section (config/schema.ts) as a LoraConfig adapting `targets`. */
export function loraConfigOf(section: LoraSection, targets: TargetModules): LoraConfig {
  return {
    r: section.r, alpha: section.alpha, dropout: section.dropout, targetModules: typeof targets === 'string' ? targets : [...targets],
    useRslora: section.use_rslora, bias: 'none', fanInFanOut: false,
  };
}

/** ditty's defaults: the config schema's lora defaults and the architecture's default targets. */
export function defaultLoraConfig(arch: Architecture): LoraConfig {
  return loraConfigOf(LORA_DEFAULTS, DEFAULT_TARGET_MODULES[arch]);
}

/** alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(alpha: number, r: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Rank and scaling of the adapter on `path`, after rank_pattern / alpha_pattern. */
export function moduleRankAndScaling(config: LoraConfig, path: string): { r: number; scaling: number } {
  const r = patternValue(config.rankPattern, path, config.r);
  const alpha = patternValue(config.alphaPattern, path, config.alpha);
  return { r, scaling: loraScaling(alpha, r, config.useRslora) };
}

/** Throws an InputError "<where>: <key>: <problem>" (keys as PEFT names them) when a field is out of range. */
export function validateLoraConfig(config: LoraConfig, where = 'LoRA config'): void {
  const fail = (key: string, msg: string): never => { throw new InputError(`${where}: ${key}: ${msg}`); };
  const checkRank = (r: number, key: string): void => {
    if (!Number.isInteger(r) || r < 1) fail(key, `must be a positive integer, found ${String(r)}`);
  };
  const checkAlpha = (a: number, key: string): void => {
    if (!Number.isFinite(a) || a <= 0) fail(key, `must be a positive number, found ${String(a)}`);
  };
  checkRank(config.r, 'r');
  checkAlpha(config.alpha, 'lora_alpha');
  if (!(config.dropout >= 0 && config.dropout < 1)) fail('lora_dropout', `must be in [0, 1), found ${String(config.dropout)}`);
  if (config.bias !== 'none') fail('bias', `"${String(config.bias)}" is not supported (only "none": biases stay frozen)`);
  if (config.fanInFanOut !== false) fail('fan_in_fan_out', 'must be false (weights are stored [out, in])');
  const t = config.targetModules;
  if (typeof t === 'string') {
    if (t === '') fail('target_modules', 'must not be an empty string');
    if (config.layersToTransform !== undefined) fail('layers_to_transform', 'cannot be used when target_modules is a regex string');
  } else if (t.length === 0 || t.some((s) => typeof s !== 'string' || s === '')) {
    fail('target_modules', 'must name at least one module, each a non-empty string');
  }
  for (const [k, v] of Object.entries(config.rankPattern ?? {})) checkRank(v, `rank_pattern["${k}"]`);
  for (const [k, v] of Object.entries(config.alphaPattern ?? {})) checkAlpha(v, `alpha_pattern["${k}"]`);
}
