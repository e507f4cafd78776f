/**
 * config.json of a Hugging Face model for the supported architectures: its one validator (a zod schema
 * per architecture, chosen by `model_type`) and the typed views the rest of ditty reads.
 *
 * As transformers reads the file: a key that is absent or null takes transformers' default, unknown
 * keys are ignored (hub configs carry many), and the newer spellings partial_rotary_factor and
 * rope_theta stand in for GPT-NeoX's rotary_pct and rotary_emb_base. A bad file is one line:
 * "<file>: <key>: <problem>".
 */
import * as fs from 'node:fs';
import * as z from 'zod';
import { InputError } from '../io/errors.js';
import { checkJson, expecting, flag, isAbsent, parseJson, shown, withDefault } from '../io/json.js';

export const SUPPORTED_MODEL_TYPES = ['rwkv', 'gpt_neox'] as const;

export const GPT_NEOX_ACTIVATIONS = ['gelu', 'gelu_python', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu'] as const;
export type GptNeoXActivation = (typeof GPT_NEOX_ACTIVATIONS)[number];

function positiveInt() {
  const e = expecting('a positive integer');
  return z.number(e).int(e).positive(e);
}

function nonNegativeInt() {
  const e = expecting('a non-negative integer');
  return z.number(e).int(e).min(0, e);
}

function positiveNumber() {
  const e = expecting('a positive number');
  return z.number(e).positive(e);
}

function fraction() {
  const e = expecting('a number in [0, 1]');
  return z.number(e).min(0, e).max(1, e);
}

const commonKeys = {
  hidden_size: positiveInt(),
  num_hidden_layers: positiveInt(),
  vocab_size: positiveInt(),
  tie_word_embeddings: withDefault(flag(), false),
};

/** transformers' RwkvConfig. */
export const RwkvConfigSchema = z.object({
  model_type: z.literal('rwkv'),
  ...commonKeys,
  /** default: hidden_size */
  attention_hidden_size: positiveInt().nullish(),
  /** default: 4 * hidden_size */
  intermediate_size: positiveInt().nullish(),
  layer_norm_epsilon: withDefault(positiveNumber(), 1e-5),
  rescale_every: withDefault(nonNegativeInt(), 6),
  context_length: withDefault(positiveInt(), 1024),
}).transform((c) => ({
  ...c,
  attention_hidden_size: c.attention_hidden_size ?? c.hidden_size,
  intermediate_size: c.intermediate_size ?? 4 * c.hidden_size,
}));

/** transformers' GPTNeoXConfig. */
export const GptNeoXConfigSchema = z.object({
  model_type: z.literal('gpt_neox'),
  ...commonKeys,
  num_attention_heads: positiveInt(),
  intermediate_size: positiveInt(),
  /** default: partial_rotary_factor (newer transformers), else 0.25 */
  rotary_pct: fraction().nullish(),
  partial_rotary_factor: fraction().nullish(),
  /** default: rope_theta (newer transformers), else 10000 */
  rotary_emb_base: positiveNumber().nullish(),
  rope_theta: positiveNumber().nullish(),
  /** scaled RoPE is not implemented */
  rope_scaling: z.null({ error: (issue) => `is not supported (expected null), found ${shown(issue.input)}` }).optional(),
  layer_norm_eps: withDefault(positiveNumber(), 1e-5),
  use_parallel_residual: withDefault(flag(), true),
  hidden_act: withDefault(
    z.enum(GPT_NEOX_ACTIVATIONS, { error: (issue) => `${shown(issue.input)} is not supported (supported: ${GPT_NEOX_ACTIVATIONS.join(', ')})` }),
    'gelu',
  ),
  max_position_embeddings: withDefault(positiveInt(), 2048),
  attention_bias: withDefault(flag(), true),
}).check((ctx) => {
  const { hidden_size: hidden, num_attention_heads: heads } = ctx.value;
  if (hidden % heads !== 0) {
    ctx.issues.push({ code: 'custom', path: ['num_attention_heads'], input: heads, message: `${heads} does not divide hidden_size ${hidden}` });
  }
}).transform(({ partial_rotary_factor, rope_theta, rope_scaling: _, ...c }) => ({
  ...c,
  rotary_pct: c.rotary_pct ?? partial_rotary_factor ?? 0.25,
  rotary_emb_base: c.rotary_emb_base ?? rope_theta ?? 10000,
}));

/** config.json of any supported architecture, by `model_type`. */
export const ModelConfigSchema = z.discriminatedUnion('model_type', [RwkvConfigSchema, GptNeoXConfigSchema], {
  error: (issue) => {
    const input = issue.input;
    if (issue.code !== 'invalid_union' || typeof input !== 'object' || input === null) return `must be a JSON object, found ${shown(input)}`;
    const type = (input as Record<string, unknown>)['model_type'];
    const supported = `supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`;
    return isAbsent(type) ? `missing; expected the architecture (${supported})` : `${shown(type)} is not supported (${supported})`;
  },
});

interface Source {
  /** the file the config came from, for messages */
  readonly file: string;
  /** the whole parsed config.json, for writing it back (exports) */
  readonly raw: Readonly<Record<string, unknown>>;
}

export type RwkvConfig = Source & Readonly<z.output<typeof RwkvConfigSchema>>;
export type GptNeoXConfig = Source & Readonly<z.output<typeof GptNeoXConfigSchema>>;
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

/** Parse and check config.json text (`file` names it in messages). */
export function parseModelConfig(text: string, file: string): ModelConfig {
  const raw = parseJson(text, file);
  const config = checkJson(ModelConfigSchema, raw, file);
  return { ...config, file, raw: raw as Record<string, unknown> };
}

/** The longest sequence a model is meant to see at once. */
export function contextWindow(config: ModelConfig): number {
  return config.model_type === 'rwkv' ? config.context_length : config.max_position_embeddings;
}
