/**
 * What `ditty train` checks and tells before hours are spent: block_size against the model's
 * context, max_steps against the data, a memory estimate, and (for --dry-run) one block as the
 * model sees it.
 */
import type { TrainConfig } from '../config/index.js';
import type { Block } from '../data/index.js';
import type { Checkpointing } from '../engine/engine.js';
import { DTYPE_SIZES } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import type { TensorSource } from '../io/tensor-source.js';
import type { LoraConfig } from '../lora/config.js';
import { isTarget } from '../lora/match.js';
import type { ModelConfig } from '../models/config.js';
import { checkpointLinears } from '../models/load.js';
import { quantizedLinearSelector } from '../quant/options.js';
import { tapeBytes } from './memory-estimate.js';
import { stepsPerEpoch } from './trainer.js';

/** Epochs of the data beyond which max_steps is most likely a mistake (the model memorizes the set). */
const MANY_EPOCHS = 10;

/**
 * GPT-NeoX has no positions past max_position_embeddings: an error unless data.allow_long_blocks.
 * RWKV runs on any length, but past context_length on lengths it was not trained on: a warning.
 */
export function checkBlockSize(config: TrainConfig, model: ModelConfig): string | undefined {
  const block = config.data.block_size;
  if (model.model_type === 'gpt_neox') {
    const limit = model.max_position_embeddings;
    if (block <= limit) return undefined;
    const what = `data.block_size ${block} is beyond the ${limit} positions of this GPT-NeoX model (max_position_embeddings)`;
    if (!config.data.allow_long_blocks) {
      throw new InputError(`${what}; lower data.block_size to at most ${limit}, or set data.allow_long_blocks: true to train on positions the model never saw`);
    }
    return `${what}; data.allow_long_blocks is set, so it trains on positions the model never saw`;
  }
  if (block <= model.context_length) return undefined;
  return `data.block_size ${block} is beyond the ${model.context_length} tokens this RWKV model was trained on (context_length); `
    + 'it runs, but the loss past that length starts from a model that never saw such contexts';
}

/** A warning when max_steps goes over the training data more than MANY_EPOCHS times. */
export function checkEpochs(config: TrainConfig, trainBlocks: number): string | undefined {
  const steps = config.training.max_steps;
  if (steps === undefined) return undefined;
  const epochs = steps / stepsPerEpoch(config, trainBlocks);
  if (epochs <= MANY_EPOCHS) return undefined;
  return `training.max_steps ${steps} is ${epochs.toFixed(1)} epochs of the ${trainBlocks.toLocaleString('en-US')} training blocks `
    + `(more than ${MANY_EPOCHS}): the adapter will likely memorize them; lower max_steps or add data`;
}

export interface MemoryEstimate {
  /** the frozen base weights as held in training (NF4 linears, the rest in float32) */
  readonly baseBytes: number;
  /** LoRA weights, gradients and the two AdamW moments */
  readonly adapterBytes: number;
  readonly trainableParameters: number;
  /** activations kept for backward in one micro-batch, with the logits and their gradient */
  readonly activationBytes: number;
  readonly totalBytes: number;
}

/** NF4 bytes of `n` weights: 4-bit codes plus one absmax per block (8-bit with double quantization, else float32). */
function nf4Bytes(n: number, blocksize: number, doubleQuant: boolean): number {
  const blocks = Math.ceil(n / blocksize);
  return Math.ceil(n / 2) + (doubleQuant ? blocks + 4 * Math.ceil(blocks / 256) : 4 * blocks);
}

/**
 * The memory one training process needs, from the checkpoint's tensor shapes (no weights read): a
 * planning figure, within tens of percent; the engine's workspace and the runtime come on top.
 */
export function estimateMemory(
  config: TrainConfig, model: ModelConfig, source: TensorSource, lora: LoraConfig, checkpointing: Checkpointing,
): MemoryEstimate {
  const linears = checkpointLinears(source, model.model_type);
  const q = config.quantization;
  const quantizes = quantizedLinearSelector(linears, { bits: q.bits, doubleQuant: q.double_quant, blocksize: q.blocksize, skipModules: q.skip_modules });
  const shapes = new Map<string, readonly number[]>();
  let baseBytes = 0;
  for (const name of source.names()) {
    const info = source.info(name);
    const n = info.shape.reduce((a, b) => a * b, 1);
    const linear = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : undefined;
    if (linear !== undefined && linears.paths.includes(linear)) shapes.set(linear, info.shape);
    const float = info.dtype === 'F16' || info.dtype === 'BF16' || info.dtype === 'F32' || info.dtype === 'F64';
    if (linear !== undefined && float && quantizes(linear)) baseBytes += nf4Bytes(n, q.blocksize, q.double_quant);
    else baseBytes += float ? 4 * n : DTYPE_SIZES[info.dtype] * n;
  }
  let trainable = 0;
  for (const [p, shape] of shapes) {
    if (shape.length === 2 && isTarget(p, lora.targetModules, lora)) trainable += lora.r * (shape[0]! + shape[1]!);
  }
  const adapterBytes = 16 * trainable;
  const t = config.training;
  const rows = t.batch_size;
  const positions = rows * config.data.block_size;
  const layerInputs = 4 * positions * model.hidden_size * model.num_hidden_layers;
  const tape = tapeBytes(model, rows, config.data.block_size);
  const kept = checkpointing === 'full' ? layerInputs + tape / model.num_hidden_layers : tape;
  const activationBytes = kept + 2 * 4 * positions * model.vocab_size;
  return { baseBytes, adapterBytes, trainableParameters: trainable, activationBytes, totalBytes: baseBytes + adapterBytes + activationBytes };
}

function gib(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 2 ** 10).toFixed(1)} KiB`;
}

export function formatMemoryEstimate(m: MemoryEstimate): string {
  return `memory estimate: about ${gib(m.totalBytes)} (base weights ${gib(m.baseBytes)}, LoRA ${m.trainableParameters.toLocaleString('en-US')} `
    + `parameters with gradients and AdamW state ${gib(m.adapterBytes)}, activations of one micro-batch ${gib(m.activationBytes)}; `
    + 'the runtime and engine workspace come on top)';
}

/**
 * One training block as the model sees it: the text of its blockSize + 1 tokens, with what counts in
 * the loss between ▶ and ◀, and the padding counted at the end.
 */
export function renderBlock(block: Block, decode: (ids: readonly number[]) => string): string {
  const runs: { ids: number[]; loss: boolean }[] = [{ ids: [block.input[0]!], loss: false }];
  const textPositions = block.target.length - block.padding;
  for (let t = 0; t < textPositions; t++) {
    const loss = block.weight[t] === 1;
    const last = runs.at(-1)!;
    if (last.loss === loss) last.ids.push(block.target[t]!);
    else runs.push({ ids: [block.target[t]!], loss });
  }
  const text = runs.map((r) => (r.loss ? `▶${decode(r.ids)}◀` : decode(r.ids))).join('');
  return `${text}${block.padding > 0 ? `\n(+ ${block.padding} padding positions, not in the loss)` : ''}`;
}
