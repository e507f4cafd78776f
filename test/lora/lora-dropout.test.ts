/**
 * The fused LoRA op with dropout on against its composed definition (src/engine/reference/composed.ts):
 * base(x) + (dropout(x) A^T B^T) * scaling with the mask dropoutMask draws for (seed, path, step,
 * call), differentiated by tfjs autograd. Values and the gradients of x, A and B must agree; so must
 * LoraLinear's own unfused path (a base layer without inputGradient).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loraUpdateComposed } from '../../src/engine/reference/composed.js';
import { dropoutSeed, LoraLinear, loraLayerSeed } from '../../src/lora/lora-linear.js';
import { dropoutMask } from '../../src/random/rng.js';
import { DenseLinear } from '../../src/models/linear.js';
import type { LinearLayer } from '../../src/models/types.js';
import { useBackend } from '../helpers/backend.js';
import { uniform } from './helpers.js';

const [ROWS, IN, OUT, R] = [23, 37, 19, 4];
const P = 0.3;
const SEED = 77;
const STEP = 5;
const PATH = 'rwkv.blocks.1.attention.key';

/** The base layer without inputGradient, which sends LoraLinear down its unfused path. */
function unfused(base: LinearLayer): LinearLayer {
  return { path: base.path, inFeatures: base.inFeatures, outFeatures: base.outFeatures, hasBias: base.hasBias, apply: (x) => base.apply(x), dispose: () => base.dispose() };
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

interface Result { y: Float32Array; dx: Float32Array; dA: Float32Array; dB: Float32Array }

describe('fused LoRA op with dropout', () => {
  beforeAll(async () => { await useBackend(); });

  const w = uniform(OUT * IN, -0.5, 0.5, 1);
  const bias = uniform(OUT, -0.2, 0.2, 2);
  const a0 = uniform(R * IN, -0.3, 0.3, 3);
  const b0 = uniform(OUT * R, -0.3, 0.3, 4);
  const x0 = uniform(ROWS * IN, -1, 1, 5);
  const dy0 = uniform(ROWS * OUT, -1, 1, 6);
  const scaling = 16 / R;
  const base = (): DenseLinear => new DenseLinear(PATH, tf.tensor2d(w, [OUT, IN]), tf.tensor1d(bias));

  /** y and the gradients of sum(y * dy) for x, A and B. */
  function run(f: (x: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor, a: tf.Variable<tf.Rank.R2>, b: tf.Variable<tf.Rank.R2>): Result {
    const x = tf.variable(tf.tensor2d(x0, [ROWS, IN]));
    const dy = tf.tensor2d(dy0, [ROWS, OUT]);
    let y = new Float32Array(0);
    const { grads } = tf.variableGrads(() => {
      const out = f(x, a, b);
      y = out.dataSync<'float32'>().slice();
      return tf.sum(tf.mul(out, dy));
    }, [x, a, b]);
    const r = { y, dx: grads[x.name]!.dataSync<'float32'>().slice(), dA: grads[a.name]!.dataSync<'float32'>().slice(), dB: grads[b.name]!.dataSync<'float32'>().slice() };
    tf.dispose([x, dy, ...Object.values(grads)]);
    return r;
  }

  function layerResult(layer: LoraLinear, call: number): Result {
    layer.setTraining(true, STEP);
    layer.dropoutCursor = call;
    try {
      return run((x) => layer.apply(x), layer.loraA, layer.loraB);
    } finally {
      layer.setTraining(false);
    }
  }

  function composedResult(call: number | undefined): Result {
    const bl = base();
    const a = tf.variable(tf.tensor2d(a0, [R, IN]));
    const b = tf.variable(tf.tensor2d(b0, [OUT, R]));
    const mask = call === undefined ? undefined : dropoutMask(ROWS * IN, P, dropoutSeed(loraLayerSeed(SEED, PATH), STEP, call));
    try {
      return run((x, av, bv) => tf.add(bl.apply(x), loraUpdateComposed(x, av, bv, scaling, mask)), a, b);
    } finally {
      tf.dispose([a, b]);
      bl.dispose();
    }
  }

  function expectSame(got: Result, want: Result, what: string): void {
    expect(maxRel(got.y, want.y), `${what} y`).toBeLessThan(1e-6);
    expect(maxRel(got.dx, want.dx), `${what} dx`).toBeLessThan(1e-5);
    expect(maxRel(got.dA, want.dA), `${what} dA`).toBeLessThan(1e-5);
    expect(maxRel(got.dB, want.dB), `${what} dB`).toBeLessThan(1e-5);
  }

  it('the fused op equals the composed form with the same masks, call after call', () => {
    const layer = new LoraLinear(base(), { r: R, scaling, dropout: P, seed: SEED, a: a0, b: b0 });
    expect(layer.base.inputGradient).toBeDefined();
    try {
      for (const call of [0, 1, 2]) expectSame(layerResult(layer, call), composedResult(call), `call ${call}`);
    } finally {
      layer.dispose();
    }
  });

  it('dropout is really on: the masks differ from call to call and from no dropout', () => {
    const none = composedResult(undefined);
    const first = composedResult(0);
    const second = composedResult(1);
    expect(maxRel(first.dA, none.dA)).toBeGreaterThan(0.05);
    expect(maxRel(second.dA, first.dA)).toBeGreaterThan(0.05);
    // the mask drops about P of the inputs and scales the rest by 1 / (1 - P)
    const mask = dropoutMask(ROWS * IN, P, dropoutSeed(loraLayerSeed(SEED, PATH), STEP, 0));
    const dropped = mask.filter((m) => m === 0).length / mask.length;
    expect(Math.abs(dropped - P)).toBeLessThan(0.05);
    expect(mask.every((m) => m === 0 || Math.abs(m - 1 / (1 - P)) < 1e-6)).toBe(true);
  });

  it('LoraLinear\'s unfused path (a base without inputGradient) equals the composed form too', () => {
    const layer = new LoraLinear(unfused(base()), { r: R, scaling, dropout: P, seed: SEED, a: a0, b: b0 });
    expect(layer.base.inputGradient).toBeUndefined();
    try {
      const got = layerResult(layer, 1);
      const want = composedResult(1);
      expect(maxRel(got.y, want.y)).toBeLessThan(1e-6);
      expect(maxRel(got.dA, want.dA)).toBeLessThan(1e-5);
      expect(maxRel(got.dB, want.dB)).toBeLessThan(1e-5);
    } finally {
      layer.dispose();
    }
  });
});
