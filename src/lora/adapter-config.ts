/**
 * adapter_config.json: written as PEFT's save_pretrained writes it, and read back (from PEFT or
 * ditty) through its one validator, a zod schema.
 *
 * Reading follows PEFT: a key that is absent or null takes PEFT's LoraConfig default, and keys
 * ditty does not read pass unchecked (PEFT adds keys across versions). The PEFT features ditty does
 * not implement (DoRA, modules_to_save, ...) are refused. The schema checks types and shapes; the
 * value ranges (r a positive integer, dropout in [0, 1), ...) are LoraConfig's own rules, checked by
 * validateLoraConfig as for a config built in code. A bad file is one line: "<file>: <key>: <problem>".
 */
import * as z from 'zod';
import { checkJson, expecting, flag, isAbsent, parseJson, shown, withDefault } from '../io/json.js';
import { PyFloat, pythonJsonDumps, type PyJson } from '../io/python-json.js';
import { PEFT_LORA_DEFAULTS, validateLoraConfig, type LoraConfig } from './config.js';

export const ADAPTER_CONFIG = 'adapter_config.json';

/** What adapter_config.json says about the base model, besides the LoRA settings. */
export interface AdapterMeta {
  /** base_model_name_or_path (a hub id or a local path) */
  readonly baseModelNameOrPath?: string | null;
  readonly revision?: string | null;
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

// ---------------------------------------------------------------------------------------------
// Reading

/** A number; `what` says what is expected of it (the range itself is validateLoraConfig's). */
const number = (what: string) => z.number(expecting(what));
const integer = () => z.number(expecting('an integer')).int(expecting('an integer'));
const text = () => z.string(expecting('a string'));

/** module-name pattern -> number (PEFT rank_pattern / alpha_pattern); {} and null mean none. */
function patternMap(what: string) {
  return z.record(z.string(), number(what), expecting('an object mapping module names to numbers')).nullish()
    .transform((m) => (m === null || m === undefined || Object.keys(m).length === 0 ? undefined : m));
}

/** A name or a list of names (target_modules, layers_pattern); null: none. */
function nameOrNames() {
  return z.union([text(), z.array(text())], expecting('a string or a list of strings')).nullish();
}

/**
 * PEFT initialisations that rewrite the base weights (PiSSA and its fast-SVD variants, OLoRA, CorDA,
 * LoftQ): an adapter trained so only makes sense on that rewritten base. The others (true, false,
 * "gaussian", "eva", ...) only choose the starting A and B.
 */
const BASE_CHANGING_INIT = /^(pissa(_niter_\d+)?|olora|corda|loftq)$/;

/** A PEFT feature ditty does not implement: allowed only when `unused` says the file does not use it. */
function refused(unused: (value: unknown) => boolean) {
  return z.unknown().refine((v) => isAbsent(v) || unused(v), { error: (issue) => `${shown(issue.input)} is not supported by ditty` }).optional();
}

const isEmptyList = (v: unknown): boolean => Array.isArray(v) && v.length === 0;

/** The keys of adapter_config.json that ditty reads or refuses. */
const AdapterConfigSchema = z.object({
  peft_type: z.literal('LORA', {
    error: (issue) => `${isAbsent(issue.input) ? 'missing' : `${shown(issue.input)} adapters are not supported`}; ditty loads LORA adapters only`,
  }),
  r: withDefault(number('a positive integer'), PEFT_LORA_DEFAULTS.r),
  lora_alpha: withDefault(number('a positive number'), PEFT_LORA_DEFAULTS.alpha),
  lora_dropout: withDefault(number('a number in [0, 1)'), PEFT_LORA_DEFAULTS.dropout),
  use_rslora: withDefault(flag(), PEFT_LORA_DEFAULTS.useRslora),
  target_modules: nameOrNames(),
  rank_pattern: patternMap('a positive integer'),
  alpha_pattern: patternMap('a positive number'),
  layers_to_transform: z.union([integer(), z.array(integer())], expecting('an integer or a list of integers')).nullish(),
  layers_pattern: nameOrNames(),
  bias: withDefault(z.literal('none', { error: (issue) => `${shown(issue.input)} is not supported (only "none": biases stay frozen)` }), PEFT_LORA_DEFAULTS.bias),
  fan_in_fan_out: withDefault(z.literal(false, {
    error: (issue) => (issue.input === true
      ? 'true is not supported (RWKV and GPT-NeoX store weights [out, in])'
      : `must be true or false, found ${shown(issue.input)}`),
  }), PEFT_LORA_DEFAULTS.fanInFanOut),
  use_dora: refused((v) => v === false),
  modules_to_save: refused(isEmptyList),
  layer_replication: refused(() => false),
  lora_bias: refused((v) => v === false),
  target_parameters: refused(isEmptyList),
  trainable_token_indices: refused(() => false),
  init_lora_weights: z.unknown().refine((v) => !(typeof v === 'string' && BASE_CHANGING_INIT.test(v)), {
    error: (issue) => `${shown(issue.input)} changes the base model's weights, and ditty applies adapters to the unchanged base`
      + (issue.input === 'loftq' ? '' : '; save it with PEFT\'s path_initial_model_for_weight_conversion, which turns it into a plain LoRA adapter of the original base'),
  }).optional(),
  base_model_name_or_path: text().nullish(),
  revision: text().nullish(),
}, { error: (issue) => `must be a JSON object, found ${shown(issue.input)}` });

export interface ParsedAdapterConfig {
  /** the LoRA settings; targetModules is [] when target_modules is null (the weight keys name the modules) */
  readonly config: LoraConfig;
  /** whether adapter_config.json named target_modules (false: null, so they come from the keys) */
  readonly targetsFromConfig: boolean;
  /** base_model_name_or_path, null when absent or empty */
  readonly baseModelNameOrPath: string | null;
  /** the hub revision of the base model, null when absent or empty */
  readonly revision: string | null;
}

/** Parses and checks the text of adapter_config.json (`file` names it in messages). */
export function parseAdapterConfig(file: string, text: string): ParsedAdapterConfig {
  const c = checkJson(AdapterConfigSchema, parseJson(text, file), file);
  const targets = c.target_modules ?? undefined;
  const config: LoraConfig = {
    r: c.r,
    alpha: c.lora_alpha,
    dropout: c.lora_dropout,
    targetModules: targets ?? [],
    useRslora: c.use_rslora,
    bias: c.bias,
    fanInFanOut: c.fan_in_fan_out,
    rankPattern: c.rank_pattern,
    alphaPattern: c.alpha_pattern,
    layersToTransform: c.layers_to_transform ?? undefined,
    layersPattern: c.layers_pattern ?? undefined,
  };
  // With target_modules null the weight keys name the modules (readAdapter): check the rest.
  validateLoraConfig(targets === undefined ? { ...config, targetModules: ['(named by the weight keys)'] } : config, file);
  return {
    config,
    targetsFromConfig: targets !== undefined,
    baseModelNameOrPath: c.base_model_name_or_path || null,
    revision: c.revision || null,
  };
}
