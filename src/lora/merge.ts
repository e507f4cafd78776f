/** Folding a LoRA update into its base weight: W' = W + scaling * B A. */
import * as tf from '@tensorflow/tfjs-core';
import { Nf4Linear } from '../models/nf4-linear.js';
import type { LinearLayer } from '../models/types.js';
import { dequantizeNf4 } from '../quant/nf4.js';
import type { LoraLinear } from './lora-linear.js';

/**
 * W [out, in] + scaling * B [out, r] · A [r, in], as a new float32 array (W is not modified).
 * Products are summed in JavaScript numbers and rounded once per element.
 */
export function mergedWeight(
  w: Float32Array, shape: readonly [number, number], a: Float32Array, b: Float32Array, scaling: number,
): Float32Array {
  const [out, inp] = shape;
  if (w.length !== out * inp) throw new RangeError(`weight has ${w.length} values, shape [${out}, ${inp}] needs ${out * inp}`);
  const r = inp === 0 ? 0 : a.length / inp;
  if (!Number.isInteger(r) || a.length !== r * inp) throw new RangeError(`lora_A has ${a.length} values, not a multiple of in = ${inp}`);
  if (b.length !== out * r) throw new RangeError(`lora_B has ${b.length} values, expected [${out}, ${r}]`);
  const merged = new Float32Array(w.length);
  const bRow = new Float64Array(r);
  for (let o = 0; o < out; o++) {
    for (let k = 0; k < r; k++) bRow[k] = scaling * b[o * r + k]!;
    for (let i = 0; i < inp; i++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += bRow[k]! * a[k * inp + i]!;
      merged[o * inp + i] = w[o * inp + i]! + s;
    }
  }
  return merged;
}

/**
 * The float32 weight [out, in] of a base layer: a copy of a dense layer's weight, or the
 * dequantized NF4 weight. Throws for layer kinds that hold no readable weight.
 */
export function baseWeightOf(layer: LinearLayer): Float32Array {
  if (layer instanceof Nf4Linear) return dequantizeNf4(layer.state);
  const weight: unknown = (layer as { weight?: unknown }).weight;
  if (weight instanceof tf.Tensor && weight.dtype === 'float32' && weight.rank === 2) {
    return (weight.dataSync() as Float32Array).slice();
  }
  throw new Error(`${layer.path}: cannot read the weight of this kind of linear layer to merge into it`);
}

/**
 * The merged weight of an adapted layer. Pass `original` (the checkpoint's 16/32-bit weight as
 * float32) when the base is quantized: merging onto it avoids the NF4 rounding error.
 */
export function mergeLoraLayer(layer: LoraLinear, original?: Float32Array): Float32Array {
  const { a, b } = layer.weights();
  return mergedWeight(original ?? baseWeightOf(layer.base), [layer.outFeatures, layer.inFeatures], a, b, layer.scaling);
}
