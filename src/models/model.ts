import type * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from './types.js';

/**
 * A CausalLM whose forward pass is split into embed -> block(0..numLayers-1) -> finalNorm -> logits,
 * so a trainer can run (and recompute) it block by block. hidden(ids) equals
 * finalNorm(block(n-1, ... block(0, embed(ids)))).
 */
export interface BlockwiseCausalLM extends CausalLM {
  /** messages about the checkpoint that did not stop loading (unexpected tensors, ...) */
  readonly warnings: readonly string[];
  /** ids int32 [B, T] -> residual stream [B, T, C] */
  embed(ids: tf.Tensor2D): tf.Tensor3D;
  /** one layer, [B, T, C] -> [B, T, C] */
  block(index: number, x: tf.Tensor3D): tf.Tensor3D;
  /** the final norm, [B, T, C] -> [B, T, C] */
  finalNorm(x: tf.Tensor3D): tf.Tensor3D;
}
