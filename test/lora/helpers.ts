/** Small deterministic inputs and float64 references for the LoRA and NF4 linear tests. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { DenseLinear } from '../../src/models/linear.js';
import type { LinearLayer } from '../../src/models/types.js';
import { uniform } from '../helpers/random.js';

/** the LoRA tests' inputs come from the shared generator */
export { uniform };

/** C [m, n] = A [m, k] · B^T where B is [n, k], in float64. */
export function matMulT(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[j * k + t]!;
      c[i * n + j] = s;
    }
  }
  return c;
}

/** C [m, n] = A [m, k] · B [k, n], in float64. */
export function matMul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < k; t++) {
      const av = a[i * k + t]!;
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[t * n + j]!;
    }
  }
  return c;
}

/** C [k, n] = A^T · B for A [m, k], B [m, n], in float64. */
export function matMulTA(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(k * n);
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < k; t++) {
      const av = a[i * k + t]!;
      for (let j = 0; j < n; j++) c[t * n + j] += av * b[i * n + j]!;
    }
  }
  return c;
}

/** Asserts |a - b| <= atol + rtol * |b| elementwise. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol = 0): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) expect.fail(`mismatch at ${i}: got ${a}, expected ${e}`);
  }
}

export function read(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/** A DenseLinear with deterministic random weights (and bias if asked). */
export function denseLinear(path: string, out: number, inp: number, seed: number, bias = false): DenseLinear {
  return new DenseLinear(path, tf.tensor2d(uniform(out * inp, -0.5, 0.5, seed), [out, inp]),
    bias ? tf.tensor1d(uniform(out, -0.5, 0.5, seed + 1)) : undefined);
}

/** The linears of a tiny HF RwkvForCausalLM (hidden C, vocab V), in module order. */
export function rwkvLinears(numLayers = 2, C = 8, V = 11): Map<string, LinearLayer> {
  const m = new Map<string, LinearLayer>();
  let seed = 100;
  const add = (p: string, out: number, inp: number): void => void m.set(p, denseLinear(p, out, inp, seed++));
  for (let i = 0; i < numLayers; i++) {
    const b = `rwkv.blocks.${i}`;
    for (const n of ['key', 'value', 'receptance']) add(`${b}.attention.${n}`, C, C);
    add(`${b}.attention.output`, C, C);
    add(`${b}.feed_forward.key`, 4 * C, C);
    add(`${b}.feed_forward.receptance`, C, C);
    add(`${b}.feed_forward.value`, C, 4 * C);
  }
  add('head', V, C);
  return m;
}

/** The other weights' names of the same tiny RWKV (for "not a linear" errors). */
export function rwkvOtherNames(numLayers = 2): string[] {
  const names = ['rwkv.embeddings.weight', 'rwkv.blocks.0.pre_ln.weight', 'rwkv.ln_out.weight'];
  for (let i = 0; i < numLayers; i++) {
    const b = `rwkv.blocks.${i}`;
    names.push(`${b}.ln1.weight`, `${b}.ln1.bias`, `${b}.ln2.weight`, `${b}.attention.time_decay`, `${b}.attention.time_first`,
      `${b}.attention.time_mix_key`, `${b}.feed_forward.time_mix_key`);
  }
  return names;
}

/** The linears of a tiny HF GPTNeoXForCausalLM (hidden H), in module order. */
export function neoxLinears(numLayers = 2, H = 8, V = 11): Map<string, LinearLayer> {
  const m = new Map<string, LinearLayer>();
  let seed = 200;
  const add = (p: string, out: number, inp: number): void => void m.set(p, denseLinear(p, out, inp, seed++, true));
  for (let i = 0; i < numLayers; i++) {
    const l = `gpt_neox.layers.${i}`;
    add(`${l}.attention.query_key_value`, 3 * H, H);
    add(`${l}.attention.dense`, H, H);
    add(`${l}.mlp.dense_h_to_4h`, 4 * H, H);
    add(`${l}.mlp.dense_4h_to_h`, H, 4 * H);
  }
  m.set('embed_out', denseLinear('embed_out', V, H, seed++));
  return m;
}

export function disposeAll(linears: Map<string, LinearLayer>): void {
  for (const l of linears.values()) l.dispose();
  linears.clear();
}
