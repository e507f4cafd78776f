/** Typed views of a Hugging Face config.json for the supported architectures. */
import * as fs from 'node:fs';
import { InputError } from '../io/errors.js';
import { parseJson } from '../io/json.js';

export const SUPPORTED_MODEL_TYPES = ['rwkv', 'gpt_neox'] as const;

export const GPT_NEOX_ACTIVATIONS = ['gelu', 'gelu_python', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu'] as const;
export type GptNeoXActivation = (typeof GPT_NEOX_ACTIVATIONS)[number];

interface CommonConfig {
  /** the file the config came from, for messages */
  readonly file: string;
  /** the whole parsed config.json, for writing it back (exports) */
  readonly raw: Readonly<Record<string, unknown>>;
  readonly hidden_size: number;
  readonly num_hidden_layers: number;
  readonly vocab_size: number;
  readonly tie_word_embeddings: boolean;
}

export interface RwkvConfig extends CommonConfig {
  readonly model_type: 'rwkv';
  readonly attention_hidden_size: number;
  readonly intermediate_size: number;
  readonly layer_norm_epsilon: number;
  readonly rescale_every: number;
  readonly context_length: number;
}

export interface GptNeoXConfig extends CommonConfig {
  readonly model_type: 'gpt_neox';
  readonly num_attention_heads: number;
  readonly intermediate_size: number;
  readonly rotary_pct: number;
  readonly rotary_emb_base: number;
  readonly layer_norm_eps: number;
  readonly use_parallel_residual: boolean;
  readonly hidden_act: GptNeoXActivation;
  readonly max_position_embeddings: number;
  readonly attention_bias: boolean;
}

export type ModelConfig = RwkvConfig | GptNeoXConfig;

/** Read and parse a config.json file. */
export function readModelConfig(file: string): ModelConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`${file}: cannot read the model config: ${(err as Error).message}`);
  }
  return parseModelConfig(text, file);
}

/** Parse config.json text (`file` names it in messages); dispatches on `model_type`. */
export function parseModelConfig(text: string, file: string): ModelConfig {
  const json = parseJson(text, file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError(`${file}: expected a JSON object`);
  const keys = new Keys(json as Record<string, unknown>, file);
  const type = keys.string('model_type');
  switch (type) {
    case 'rwkv':
      return parseRwkv(keys);
    case 'gpt_neox':
      return parseGptNeoX(keys);
    default:
      throw new InputError(`${file}: model_type "${type}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
}

function parseRwkv(keys: Keys): RwkvConfig {
  const hidden = keys.positiveInt('hidden_size');
  return {
    ...keys.common(),
    model_type: 'rwkv',
    hidden_size: hidden,
    attention_hidden_size: keys.positiveInt('attention_hidden_size', hidden),
    intermediate_size: keys.positiveInt('intermediate_size', 4 * hidden),
    layer_norm_epsilon: keys.positiveNumber('layer_norm_epsilon', 1e-5),
    rescale_every: keys.nonNegativeInt('rescale_every', 6),
    context_length: keys.positiveInt('context_length', 1024),
  };
}

function parseGptNeoX(keys: Keys): GptNeoXConfig {
  const hidden = keys.positiveInt('hidden_size');
  const heads = keys.positiveInt('num_attention_heads');
  if (hidden % heads !== 0) throw keys.error('num_attention_heads', `${heads} does not divide hidden_size ${hidden}`);
  const ropeScaling = keys.raw['rope_scaling'];
  if (ropeScaling !== undefined && ropeScaling !== null) throw keys.error('rope_scaling', 'is not supported (expected null)');
  const act = keys.string('hidden_act', 'gelu');
  if (!(GPT_NEOX_ACTIVATIONS as readonly string[]).includes(act)) {
    throw keys.error('hidden_act', `"${act}" is not supported (supported: ${GPT_NEOX_ACTIVATIONS.join(', ')})`);
  }
  // newer transformers also write the rotary settings as partial_rotary_factor / rope_theta
  const rotaryPct = keys.number('rotary_pct', keys.number('partial_rotary_factor', 0.25));
  if (rotaryPct < 0 || rotaryPct > 1) throw keys.error('rotary_pct', `must be in [0, 1], found ${rotaryPct}`);
  return {
    ...keys.common(),
    model_type: 'gpt_neox',
    hidden_size: hidden,
    num_attention_heads: heads,
    intermediate_size: keys.positiveInt('intermediate_size'),
    rotary_pct: rotaryPct,
    rotary_emb_base: keys.positiveNumber('rotary_emb_base', keys.positiveNumber('rope_theta', 10000)),
    layer_norm_eps: keys.positiveNumber('layer_norm_eps', 1e-5),
    use_parallel_residual: keys.boolean('use_parallel_residual', true),
    hidden_act: act as GptNeoXActivation,
    max_position_embeddings: keys.positiveInt('max_position_embeddings', 2048),
    attention_bias: keys.boolean('attention_bias', true),
  };
}

/** Typed access to config keys; a key that is null or absent takes the default, or is an error without one. */
class Keys {
  constructor(readonly raw: Readonly<Record<string, unknown>>, readonly file: string) {}

  error(key: string, message: string): InputError {
    return new InputError(`${this.file}: "${key}" ${message}`);
  }

  common(): Omit<CommonConfig, 'hidden_size'> {
    return {
      file: this.file,
      raw: this.raw,
      num_hidden_layers: this.positiveInt('num_hidden_layers'),
      vocab_size: this.positiveInt('vocab_size'),
      tie_word_embeddings: this.boolean('tie_word_embeddings', false),
    };
  }

  string(key: string, fallback?: string): string {
    return this.get(key, 'a string', (v) => typeof v === 'string', fallback) as string;
  }

  boolean(key: string, fallback?: boolean): boolean {
    return this.get(key, 'true or false', (v) => typeof v === 'boolean', fallback) as boolean;
  }

  number(key: string, fallback?: number): number {
    return this.get(key, 'a number', (v) => typeof v === 'number' && Number.isFinite(v), fallback) as number;
  }

  positiveNumber(key: string, fallback?: number): number {
    return this.get(key, 'a positive number', (v) => typeof v === 'number' && Number.isFinite(v) && v > 0, fallback) as number;
  }

  positiveInt(key: string, fallback?: number): number {
    return this.get(key, 'a positive integer', (v) => Number.isSafeInteger(v) && (v as number) > 0, fallback) as number;
  }

  nonNegativeInt(key: string, fallback?: number): number {
    return this.get(key, 'a non-negative integer', (v) => Number.isSafeInteger(v) && (v as number) >= 0, fallback) as number;
  }

  private get(key: string, what: string, ok: (v: unknown) => boolean, fallback: unknown): unknown {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw this.error(key, `is missing (expected ${what})`);
      return fallback;
    }
    if (!ok(v)) throw this.error(key, `must be ${what}, found ${JSON.stringify(v)}`);
    return v;
  }
}

/** The longest sequence a model is meant to see at once. */
export function contextWindow(config: ModelConfig): number {
  return config.model_type === 'rwkv' ? config.context_length : config.max_position_embeddings;
}
