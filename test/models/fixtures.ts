import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/load.js';
import type { BlockwiseCausalLM } from '../../src/models/model.js';
import { SHARED_DIR } from '../helpers/shared.js';

export const MODEL_FIXTURES = ['tiny-rwkv', 'tiny-neox-parallel', 'tiny-neox-sequential'] as const;

export interface ReferenceText {
  readonly ids: number[];
  readonly loss: number;
  readonly logits_positions: { first3: number[]; last3: number[] };
  readonly logits_tensors: { first3: string; last3: string };
  /** [T, C] per stage: embeddings, (after_pre_ln), layer_{i}, final norm */
  readonly hidden_states_f64: Record<string, number[][]>;
}

export function fixtureDir(name: string): string {
  return path.join(SHARED_DIR, 'fixtures', name);
}

export function fixturePresent(name: string): boolean {
  const present = fs.existsSync(path.join(fixtureDir(name), 'model.safetensors'));
  if (!present) console.warn(`SKIPPED: ${fixtureDir(name)} is missing (reference fixtures live in ../shared beside the repo)`);
  return present;
}

export function readReference(name: string): { texts: ReferenceText[] } {
  return JSON.parse(fs.readFileSync(path.join(fixtureDir(name), 'reference.json'), 'utf8')) as { texts: ReferenceText[] };
}

export function loadFixtureModel(name: string): BlockwiseCausalLM {
  const source = SafetensorsFile.open(path.join(fixtureDir(name), 'model.safetensors'));
  try {
    return loadModel(path.join(fixtureDir(name), 'config.json'), source);
  } finally {
    source.close();
  }
}

/** Reference logits [3, V] for text i: first3 and last3. */
export function readReferenceLogits(name: string, text: ReferenceText): { first3: Float32Array; last3: Float32Array } {
  const file = SafetensorsFile.open(path.join(fixtureDir(name), 'reference_logits.safetensors'));
  try {
    return { first3: file.readFloat32(text.logits_tensors.first3), last3: file.readFloat32(text.logits_tensors.last3) };
  } finally {
    file.close();
  }
}

export function idsTensor(rows: readonly (readonly number[])[]): tf.Tensor2D {
  return tf.tensor2d(rows.map((r) => [...r]), [rows.length, rows[0]!.length], 'int32');
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Rows `positions` of logits [1, T, V] as one flat array. */
export function rowsAt(logits: tf.Tensor3D, positions: readonly number[]): Float32Array {
  const V = logits.shape[2];
  const all = logits.dataSync();
  const out = new Float32Array(positions.length * V);
  positions.forEach((p, i) => out.set(all.subarray(p * V, (p + 1) * V), i * V));
  return out;
}

/**
 * Mean next-token cross-entropy (natural log): the mean over rows b and positions t = 0..T-2 of
 * logsumexp(logits[b, t]) - logits[b, t, ids[b, t+1]]. Differentiable in `logits`. Needs T >= 2.
 * (The reference figure the fixtures were made with; training and eval use engine/cross-entropy.)
 */
export function meanNextTokenLoss(logits: tf.Tensor3D, ids: tf.Tensor2D): tf.Scalar {
  const [B, T, V] = logits.shape;
  if (T < 2) throw new Error(`meanNextTokenLoss: need at least 2 positions, got ${T}`);
  if (ids.shape[0] !== B || ids.shape[1] !== T) throw new Error(`meanNextTokenLoss: ids [${ids.shape}] do not match logits [${logits.shape}]`);
  return tf.tidy(() => {
    const pred = tf.slice(logits, [0, 0, 0], [B, T - 1, V]);
    const targets = tf.cast(tf.slice(ids, [0, 1], [B, T - 1]), 'int32');
    // the target logit by a one-hot product (the gather gradient is missing on wasm)
    const picked = tf.sum(tf.mul(pred, tf.oneHot(targets, V)), -1);
    return tf.mean(tf.sub(tf.logSumExp(pred, -1), picked));
  });
}
