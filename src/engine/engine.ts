/**
 * The contract between the trainer (and eval, generate, bench) and an engine that holds a model's
 * frozen weights and LoRA adapters and computes with them. Two implementations: the tfjs engine
 * (src/runtime/tfjs-engine.ts, the readable reference) and the native engine (src/runtime/native-engine.ts,
 * C++ kernels). Everything crosses this boundary as plain arrays, so a checkpoint written through
 * one engine resumes on the other.
 */

/** One micro-batch: B rows of T positions. target[t] follows input[t]; weight 0 masks a position. */
export interface MicroBatch {
  readonly rows: number;
  readonly length: number;
  readonly input: Int32Array;
  readonly target: Int32Array;
  readonly weight: Uint8Array;
}

/** One LoRA matrix under its PEFT key (`base_model.model.<path>.lora_A.weight`). */
export interface AdapterWeight {
  readonly name: string;
  readonly shape: readonly [number, number];
  readonly values: Float32Array;
}

/** AdamW moments of one adapter tensor. */
export interface OptimizerSlot {
  readonly expAvg: Float32Array;
  readonly expAvgSq: Float32Array;
}

export interface AdamWSettings {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
}

/** What backward recomputes: nothing, the element-wise work between products, or whole blocks. */
export const CHECKPOINTING = ['none', 'selective', 'full'] as const;
export type Checkpointing = (typeof CHECKPOINTING)[number];

/**
 * The dtype of activations a config may ask for (`training.compute_dtype`); auto is bf16 on cuda and
 * fp32 elsewhere. What an engine does with each is decided where the engine is made
 * (src/engine/native/device.ts activationDtype for the native engine; the tfjs engine is fp32).
 */
export const COMPUTE_DTYPES = ['auto', 'fp32', 'bf16', 'fp16'] as const;
export type ComputeDtype = (typeof COMPUTE_DTYPES)[number];

/** Incremental decoding of one sequence (RWKV recurrent state or GPT-NeoX KV cache). */
export interface Decoder {
  /** feeds ids after the tokens fed so far; returns the logits [vocab] of the last of them */
  feed(ids: readonly number[]): Float32Array;
  dispose(): void;
}

/** Scores batches without gradients or dropout, and decodes. */
export interface LossEngine {
  /** e.g. "native cpu (avx512, 2 threads)" or "tfjs wasm" */
  readonly description: string;
  /** the dtype activations are stored in */
  readonly computeDtype: 'fp32' | 'bf16';
  /** sum over positions of weight * nll(target | input); no gradients, no dropout */
  lossSum(batch: MicroBatch): number;
  /** a decoder starting from an empty state */
  decoder(): Decoder;
  dispose(): void;
}

export interface TrainEngine extends LossEngine {
  /** adapter keys in order (A then B per adapted linear) */
  readonly adapterNames: readonly string[];
  /**
   * Forward and backward of one micro-batch with dropout masks of micro-step `microStep`; the
   * gradients of (loss sum / normalizer) are added to those accumulated since the last step.
   * Returns loss sum / normalizer.
   */
  accumulate(batch: MicroBatch, normalizer: number, microStep: number): number;
  /**
   * The global L2 norm of the accumulated gradients; unless it is not finite: gradients clipped to
   * `maxGradNorm` (0: no clipping, as torch clip_grad_norm_), one AdamW step at `lr`. Gradients are
   * cleared either way. Returns the norm before clipping.
   */
  step(lr: number, maxGradNorm: number): number;
  /** copies of the adapter weights */
  adapterTensors(): AdapterWeight[];
  /** replaces the adapter weights (every key of adapterNames must be present with its size) */
  loadAdapter(values: ReadonlyMap<string, Float32Array>, where: string): void;
  /** AdamW moments by adapter key, and the optimizer steps taken */
  optimizerState(): { readonly step: number; readonly slots: Map<string, OptimizerSlot> };
  loadOptimizerState(slots: ReadonlyMap<string, OptimizerSlot>, step: number): void;
}
