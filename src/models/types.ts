import type * as tf from '@tensorflow/tfjs-core';

export type Architecture = 'rwkv' | 'gpt_neox';

/**
 * A linear layer found by its Hugging Face module path (e.g. `rwkv.blocks.3.attention.key`).
 * Models call `apply` through their `linears` map, so quantization and LoRA replace a layer by
 * putting a wrapper under the same path.
 */
export interface LinearLayer {
  readonly path: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly hasBias: boolean;
  /** x [..., in] -> [..., out] */
  apply(x: tf.Tensor): tf.Tensor;
  /**
   * For frozen layers: dL/dx [rows, in] from dL/dy [rows, out], i.e. dy · W. Lets a fused op (LoRA)
   * differentiate through the layer without a nested tape.
   */
  inputGradient?(dy: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

/** Incremental decoding state (RWKV recurrent state or a GPT-NeoX KV cache). */
export interface DecodeState {
  /** number of tokens consumed so far */
  readonly position: number;
  dispose(): void;
}

export interface CausalLM {
  readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  /** every linear of the model by module path, in module order */
  readonly linears: Map<string, LinearLayer>;
  /** the other weights (embeddings, norms, head, RWKV mixes/decays) by checkpoint name */
  readonly otherParams: Map<string, tf.Tensor>;
  /** ids int32 [B, T] -> final hidden states (after the final norm) float32 [B, T, C] */
  hidden(ids: tf.Tensor2D): tf.Tensor3D;
  /** final hidden states [..., C] -> logits [..., V] */
  logits(hidden: tf.Tensor): tf.Tensor;
  /** ids int32 [B, T] -> logits [B, T, V] */
  forward(ids: tf.Tensor2D): tf.Tensor3D;
  /** empty decoding state for `batch` sequences */
  initState(batch: number): DecodeState;
  /** feed ids int32 [B, T] after the tokens already in `state`; returns logits of the last position [B, V] and the new state */
  step(ids: tf.Tensor2D, state: DecodeState): { logits: tf.Tensor2D; state: DecodeState };
  dispose(): void;
}
