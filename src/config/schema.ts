/**
 * The `ditty train` config: one zod schema that validates, applies defaults and documents every key.
 * Each leaf carries its description (and, where the type alone does not say it, the allowed values in
 * words) as metadata, which the error messages and the README reference are generated from.
 */
import * as z from 'zod';
import { BACKENDS } from '../engine/choice.js';
import { CHECKPOINTING, COMPUTE_DTYPES } from '../engine/engine.js';

export const LR_SCHEDULERS = ['constant', 'linear', 'cosine'] as const;
export const DATA_FORMATS = ['dolly', 'text'] as const;
export const TRAIN_ON = ['response', 'all'] as const;
export const ON_BAD_ROW = ['skip', 'error'] as const;

export const DEFAULT_DATASET = 'databricks/databricks-dolly-15k';
export const DEFAULT_DATASET_FILE = 'databricks-dolly-15k.jsonl';

/** ditty's default LoRA targets per architecture (RWKV: the 2023 recipe's key, value, receptance). */
export const DEFAULT_TARGET_MODULES = {
  rwkv: ['key', 'value', 'receptance'],
  gpt_neox: ['query_key_value'],
} as const satisfies Readonly<Record<string, readonly string[]>>;

/** Metadata a key carries besides its type: shown in errors and the config reference. */
export interface KeyMeta {
  readonly description: string;
  /** what is allowed, in words, where the type and bounds do not say it all */
  readonly allowed?: string;
  /** the default in words, where it is derived rather than a fixed value */
  readonly defaultText?: string;
}

function doc<T extends z.ZodType>(schema: T, meta: KeyMeta | string): T {
  return schema.meta(typeof meta === 'string' ? { description: meta } : { ...meta });
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
const text = () => z.string().min(1);
const names = () => z.array(text());
const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;

const model = z.strictObject({
  name_or_path: doc(text(), {
    description: 'The base model: a local folder in Hugging Face layout (relative to this file) or a hub repo id.',
    allowed: 'a local model folder or a hub repo id such as RWKV/rwkv-4-169m-pile',
  }),
  revision: doc(text().default('main'), 'Branch, tag or commit of a hub model.'),
  tokenizer: doc(text().optional(), 'A tokenizer.json (or a folder holding one) to use instead of the model\'s own.'),
});

const quantization = z.strictObject({
  bits: doc(z.literal([4, 16]).default(4), {
    description: 'Storage of the frozen base linears: 4 = NF4 (QLoRA), 16 = unquantized in the compute dtype.',
    allowed: '4 (NF4) or 16 (no quantization)',
  }),
  double_quant: doc(z.boolean().default(true), 'Quantize the per-block absmax scales too (bitsandbytes double quantization).'),
  blocksize: doc(
    int(32, 4096).refine(isPowerOfTwo, { message: 'is not a power of two' }).default(64),
    { description: 'Weights per NF4 quantization block.', allowed: 'a power of two from 32 to 4096' },
  ),
  skip_modules: doc(names().default([]),
    'Linears kept unquantized: a module path, or a name matching every path that ends with "." + name. The output head and embeddings are never quantized.'),
});

const lora = z.strictObject({
  r: doc(int(1).default(8), 'LoRA rank: the inner dimension of the adapter matrices A [r, in] and B [out, r].'),
  alpha: doc(z.number().positive().default(16), 'LoRA alpha; the update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA).'),
  dropout: doc(z.number().min(0).lt(1).default(0.05), 'Dropout on the input of the LoRA branch.'),
  target_modules: doc(names().min(1).nullable().default(null), {
    description: 'Linears that get adapters, matched like PEFT: the module path equals an entry or ends with "." + entry. Unset: key, value, receptance for RWKV; query_key_value for GPT-NeoX.',
    defaultText: 'by architecture',
  }),
  use_rslora: doc(z.boolean().default(false), 'Rank-stabilized LoRA: scale by alpha / sqrt(r) instead of alpha / r.'),
});

const data = z.strictObject({
  dataset: doc(text().default(DEFAULT_DATASET), {
    description: 'A hub dataset repo id, a local .jsonl, .json or .parquet file, or a local dataset folder (relative to this file).',
    allowed: 'a hub dataset id, or a local .jsonl/.json/.parquet file or folder',
  }),
  revision: doc(text().default('main'), 'Branch, tag or commit of a hub dataset.'),
  file: doc(text().default(DEFAULT_DATASET_FILE), 'The data file inside a hub dataset repo or a local dataset folder (not used when data.dataset is a file).'),
  format: doc(z.enum(DATA_FORMATS).default('dolly'),
    'Row layout: dolly = instruction, context, response rendered with the Dolly prompt template; text = one plain text field per row.'),
  text_field: doc(text().default('text'), 'The field holding the text when format is text.'),
  block_size: doc(int(1).default(512), 'Tokens per training sequence.'),
  allow_long_blocks: doc(z.boolean().default(false),
    'Allow block_size beyond a GPT-NeoX model\'s max_position_embeddings (positions it was never trained on); without it that is an error. RWKV has no such limit and gets a warning past its context_length.'),
  packing: doc(z.boolean().default(true), 'Concatenate examples (separated by end-of-text) into full blocks instead of padding each one.'),
  train_on: doc(z.enum(TRAIN_ON).optional(), {
    description: 'Which tokens carry the loss: response (only the response of each example; dolly format) or all.',
    defaultText: 'response for dolly, all for text',
  }),
  validation_fraction: doc(z.number().min(0).max(0.5).default(0.02), 'Fraction of rows held out for validation loss; 0 for none.'),
  max_rows: doc(int(1).optional(), 'Use only the first N rows of the dataset (before the validation split).'),
  on_bad_row: doc(z.enum(ON_BAD_ROW).default('skip'), 'A row missing its fields: skip it (and count it in the log) or stop with an error naming the row.'),
  shuffle: doc(z.boolean().default(true), 'Shuffle the training examples each epoch (seeded by training.seed).'),
}).transform((d) => ({ ...d, train_on: d.train_on ?? defaultTrainOn(d.format) }));

/** Which tokens carry the loss when data.train_on is unset: the response in dolly rows, all of plain text. */
export function defaultTrainOn(format: (typeof DATA_FORMATS)[number]): (typeof TRAIN_ON)[number] {
  return format === 'dolly' ? 'response' : 'all';
}

const training = z.strictObject({
  batch_size: doc(int(1).default(1), 'Sequences per forward/backward pass (micro batch).'),
  grad_accum: doc(int(1).default(32), 'Micro batches accumulated per optimizer step; the effective batch is batch_size * grad_accum.'),
  epochs: doc(int(1).default(1), 'Passes over the training set (ignored when max_steps is set).'),
  max_steps: doc(int(1).optional(), 'Stop after this many optimizer steps; overrides epochs.'),
  learning_rate: doc(z.number().positive().default(2e-4), 'Peak AdamW learning rate.'),
  lr_scheduler: doc(z.enum(LR_SCHEDULERS).default('constant'), 'Learning-rate schedule after warmup: constant, linear decay to 0, or cosine decay to 0.'),
  warmup_steps: doc(int(0).default(0), 'Optimizer steps of linear warmup from 0 to learning_rate.'),
  weight_decay: doc(z.number().min(0).default(0), 'AdamW decoupled weight decay (on the LoRA weights).'),
  adam_beta1: doc(z.number().min(0).lt(1).default(0.9), 'AdamW beta1.'),
  adam_beta2: doc(z.number().min(0).lt(1).default(0.999), 'AdamW beta2.'),
  adam_epsilon: doc(z.number().positive().default(1e-8), 'AdamW epsilon.'),
  max_grad_norm: doc(z.number().min(0).default(1), 'Clip the global gradient norm to this value; 0 disables clipping.'),
  seed: doc(int(0, 2 ** 32 - 1).default(42), 'Seed for LoRA initialisation, dropout, shuffling and the validation split.'),
  gradient_checkpointing: doc(z.union([z.boolean(), z.enum(CHECKPOINTING)]).default(false), {
    description: 'What backward recomputes: none keeps every activation; selective keeps the products\' outputs and recomputes '
      + 'element-wise work (native engine; the tfjs engine recomputes whole blocks); full (or true) recomputes each block from its input (about 1.5x the compute).',
    allowed: 'false / none, selective, true / full',
  }),
  compute_dtype: doc(z.enum(COMPUTE_DTYPES).default('auto'),
    'Dtype of activations and dequantized weights: auto is bf16 on cuda and fp32 on the CPU engines; the trainer falls back to fp32 (and says so) where the engine lacks the one asked for.'),
  eval_every: doc(int(1).optional(), 'Compute the validation loss every N optimizer steps (and at the end); needs validation_fraction > 0.'),
  log_every: doc(int(1).default(1), 'Print loss, learning rate and throughput every N optimizer steps.'),
});

const output = z.strictObject({
  dir: doc(text().optional(), {
    description: 'Where checkpoints and the final adapter go (relative to this file); unset: checkpoints/<model name> under the working directory.',
    defaultText: 'checkpoints/<model name>',
  }),
  checkpoint_every: doc(int(1).default(50), 'Save a checkpoint every N optimizer steps (and always at the end).'),
  keep_last: doc(int(0).default(3), 'Keep only the newest N checkpoints; 0 keeps all.'),
  resume: doc(z.boolean().default(true), 'Continue from the newest complete checkpoint in output.dir when there is one.'),
});

const samples = z.strictObject({
  prompts: doc(z.union([names(), text()]).default([]), {
    description: 'Prompts the model continues during training, wrapped in the training template (the instruction for dolly, the text as is for text), so the report shows how its answers change: a list, or a text file with one prompt per line (relative to this file).',
    allowed: 'a list of prompts, or the path of a text file with one prompt per line',
  }),
  every: doc(int(1).default(50), 'Generate the samples every N optimizer steps, before the first step and at the end.'),
  max_new_tokens: doc(int(1).default(64), 'Most tokens generated per prompt.'),
  temperature: doc(z.number().min(0).max(100).default(0.7), 'Sampling temperature; 0 is greedy.'),
  top_p: doc(z.number().gt(0).max(1).default(0.9), 'Nucleus sampling mass; 1 samples from the whole vocabulary.'),
  seed: doc(int(0, 2 ** 32 - 1).default(0), 'Sampling seed, the same at every step, so that a change in the output is the model\'s.'),
});

/** Per-section descriptions, for the reference and for errors about a whole section. */
export const SECTION_DESCRIPTIONS = {
  model: 'The base model to fine-tune.',
  quantization: 'How the frozen base weights are stored (QLoRA: NF4 with double quantization).',
  lora: 'The LoRA adapters that are trained.',
  data: 'The training data and how it is turned into token blocks.',
  training: 'The optimisation loop.',
  output: 'Checkpoints and the trained adapter.',
  eval: 'Sample generations during training (written to samples.jsonl and shown in report.html).',
} as const;

export const TrainConfigSchema = z.strictObject({
  model,
  quantization: quantization.prefault({}),
  lora: lora.prefault({}),
  data: data.prefault({}),
  training: training.prefault({}),
  output: output.prefault({}),
  eval: samples.prefault({}),
  backend: doc(z.enum(BACKENDS).default('auto'),
    'Compute engine: auto (cuda when present, else cpu, else wasm), cuda (ditty\'s native engine on an NVIDIA GPU), cpu (ditty\'s native C++ engine), '
    + 'wasm (tfjs engine, WebAssembly), js (tfjs engine, pure JavaScript; called cpu before 0.2), tensorflow (tfjs engine on tfjs-node[-gpu] if installed).'),
});

export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

export type LoraSection = z.output<typeof lora>;
export type DataSection = z.output<typeof data>;

/**
 * The data section on its own, for commands that name their data with options rather than a config
 * file (`ditty eval --dataset`): it checks the keys given and applies every other default.
 */
export const DataSectionSchema = data;

/**
 * Each section's defaults, read from the schema (parsing an empty section applies every .default()):
 * library code that is called without a config takes its defaults from here, never its own.
 */
export const QUANTIZATION_DEFAULTS: z.output<typeof quantization> = quantization.parse({});
export const LORA_DEFAULTS: LoraSection = lora.parse({});
export const DATA_DEFAULTS: DataSection = data.parse({});
export const TRAINING_DEFAULTS: z.output<typeof training> = training.parse({});
type Parsed = z.output<typeof TrainConfigSchema>;

/**
 * A fully resolved training config: defaults applied, local paths absolute, output.dir filled in.
 * `lora.target_modules` null means the architecture's default (DEFAULT_TARGET_MODULES).
 */
export type TrainConfig = Omit<Parsed, 'output'> & { output: Parsed['output'] & { dir: string } };


/** The LoRA target modules for a model type (`model_type` in config.json): the config's, or the default. */
export function resolveTargetModules(config: TrainConfig, modelType: string): readonly string[] | undefined {
  const defaults: Readonly<Record<string, readonly string[] | undefined>> = DEFAULT_TARGET_MODULES;
  return config.lora.target_modules ?? defaults[modelType];
}
