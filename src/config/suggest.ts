/** "Did you mean ...?" for unknown keys and misspelled values. */
import { keysAt } from './describe.js';

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate closest to `word` (case-insensitively), if it is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(w, name.toLowerCase());
    const limit = Math.max(1, Math.floor(Math.max(w.length, name.length) / 3));
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Values other tools use for ditty's enum values. */
const VALUE_SYNONYMS: Readonly<Record<string, string>> = {
  gpu: 'cuda',
  nvidia: 'cuda',
  bfloat16: 'bf16',
  float16: 'fp16',
  half: 'fp16',
  float32: 'fp32',
  float: 'fp32',
  cosine_with_restarts: 'cosine',
};

/** A suggestion for a value that is not one of `options`. */
export function suggestValue(value: string, options: readonly string[]): string | undefined {
  const synonym = ownValue(VALUE_SYNONYMS, value.toLowerCase());
  return synonym !== undefined && options.includes(synonym) ? synonym : closest(value, options);
}

/** table[key] when it is the table's own entry ("constructor" or "__proto__" are not). */
function ownValue(table: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

/** Names other tools (axolotl, PEFT, transformers) use for ditty's keys. */
const SYNONYMS: Readonly<Record<string, string>> = {
  base_model: 'model.name_or_path',
  model_name_or_path: 'model.name_or_path',
  tokenizer_config: 'model.tokenizer',
  load_in_4bit: 'quantization.bits',
  bnb_4bit_use_double_quant: 'quantization.double_quant',
  lora_r: 'lora.r',
  rank: 'lora.r',
  lora_alpha: 'lora.alpha',
  lora_dropout: 'lora.dropout',
  lora_target_modules: 'lora.target_modules',
  datasets: 'data.dataset',
  path: 'data.dataset',
  data_files: 'data.file',
  sequence_len: 'data.block_size',
  max_seq_length: 'data.block_size',
  sample_packing: 'data.packing',
  train_on_inputs: 'data.train_on',
  val_set_size: 'data.validation_fraction',
  micro_batch_size: 'training.batch_size',
  per_device_train_batch_size: 'training.batch_size',
  gradient_accumulation_steps: 'training.grad_accum',
  num_epochs: 'training.epochs',
  num_train_epochs: 'training.epochs',
  lr: 'training.learning_rate',
  lr_scheduler_type: 'training.lr_scheduler',
  bf16: 'training.compute_dtype',
  fp16: 'training.compute_dtype',
  eval_steps: 'training.eval_every',
  logging_steps: 'training.log_every',
  output_dir: 'output.dir',
  save_steps: 'output.checkpoint_every',
  save_total_limit: 'output.keep_last',
  resume_from_checkpoint: 'output.resume',
};

function leafPaths(): string[] {
  return keysAt([]).flatMap((section) => {
    const keys = keysAt([section]);
    return keys.length === 0 ? [section] : keys.map((k) => `${section}.${k}`);
  });
}

/**
 * A suggestion for an unknown key `key` found in the section at `section` ([] = top level): a bare key
 * name when the likely intended key is in the same section, else its full dotted path.
 */
export function suggestKey(section: readonly string[], key: string): string | undefined {
  const here = keysAt(section);
  const relative = (full: string): string => {
    const prefix = section.length > 0 ? `${section.join('.')}.` : '';
    return full.startsWith(prefix) && !full.slice(prefix.length).includes('.') ? full.slice(prefix.length) : full;
  };
  const synonym = ownValue(SYNONYMS, key.toLowerCase());
  if (synonym !== undefined) return relative(synonym);
  const leaves = leafPaths();
  const sameName = leaves.find((p) => p.split('.').at(-1) === key.toLowerCase());
  if (sameName !== undefined) return relative(sameName);
  const near = closest(key, here) ?? here.find((k) => k.length >= 3 && key.toLowerCase().endsWith(`_${k}`));
  if (near !== undefined) return near;
  const elsewhere = closest(key, leaves.map((p) => p.split('.').at(-1)!));
  return elsewhere === undefined ? undefined : relative(leaves.find((p) => p.split('.').at(-1) === elsewhere)!);
}
