import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Nf4Linear } from '../../src/models/nf4-linear.js';
import { InputError } from '../../src/io/errors.js';
import {
  defaultLoraConfig, loraConfigOf, loraScaling, type LoraConfig,
} from '../../src/lora/config.js';
import { injectLora, LoraLinear, setLoraTraining, trainableVariables } from '../../src/lora/lora-linear.js';
import { dequantizeNf4 } from '../../src/quant/nf4.js';
import { DenseLinear } from '../../src/models/linear.js';
import type { LinearLayer } from '../../src/models/types.js';
import { useBackend } from '../helpers/backend.js';
import { denseLinear, disposeAll, expectClose, matMul, matMulT, matMulTA, read, rwkvLinears, uniform } from './helpers.js';

beforeAll(async () => { await useBackend(); });

describe('LoraConfig', () => {
  it('is the config\'s lora section, key for key', () => {
    const section = { r: 4, alpha: 32, dropout: 0.1, use_rslora: true, target_modules: null };
    expect(loraConfigOf(section, ['key'])).toEqual({
      r: 4, alpha: 32, dropout: 0.1, useRslora: true, targetModules: ['key'], bias: 'none', fanInFanOut: false,
    });
    expect(loraConfigOf(section, '.*key').targetModules).toBe('.*key');
  });

  it('scales by alpha / r, or alpha / sqrt(r) with rsLoRA', () => {
    expect(loraScaling(16, 8, false)).toBe(2);
    expect(loraScaling(16, 4, true)).toBe(8);
  });
});

/**
 * Float64 reference of y = x W^T + bias + s (x A^T) B^T and of the gradients of
 * L = sum(y * P): dX = P W + s (P B) A, dA = s (P B)^T X, dB = s P^T (X A^T).
 */
function reference(n: number, inp: number, out: number, r: number, s: number, x: ArrayLike<number>, w: ArrayLike<number>,
  a: ArrayLike<number>, b: ArrayLike<number>, p: ArrayLike<number>, bias?: ArrayLike<number>) {
  const xa = matMulT(x, a, n, inp, r);
  const lora = matMulT(xa, b, n, r, out);
  const y = matMulT(x, w, n, inp, out).map((v, i) => v + s * lora[i]! + (bias ? bias[i % out]! : 0));
  const pb = matMul(p, b, n, out, r);
  const dx = matMul(p, w, n, out, inp).map((v, i) => v + s * matMul(pb, a, n, r, inp)[i]!);
  const dA = matMulTA(pb, x, n, r, inp).map((v) => s * v);
  const dB = matMulTA(p, xa, n, out, r).map((v) => s * v);
  const loss = y.reduce((acc, v, i) => acc + v * p[i]!, 0);
  return { y, dx, dA, dB, loss };
}

describe('LoraLinear', () => {
  const cases = [
    { name: 'NF4 base, odd sizes', inp: 37, out: 13, r: 3, n: 5, nf4: true, bias: false },
    { name: 'NF4 base with bias', inp: 64, out: 24, r: 8, n: 3, nf4: true, bias: true },
    { name: 'dense base', inp: 19, out: 7, r: 2, n: 4, nf4: false, bias: true },
  ];
  for (const c of cases) {
    it(`has exact gradients wrt x, A and B (${c.name}: in ${c.inp}, out ${c.out}, r ${c.r})`, () => {
      const { inp, out, r, n } = c;
      const s = loraScaling(16, r, false);
      const w0 = uniform(out * inp, -0.5, 0.5, 21);
      const bias = c.bias ? uniform(out, -1, 1, 22) : undefined;
      const dense = c.nf4 ? undefined : new DenseLinear('m.key', tf.tensor2d(w0, [out, inp]), bias && tf.tensor1d(bias));
      const base: LinearLayer = dense ?? Nf4Linear.fromDense('m.key', w0, [out, inp], bias, { blocksize: 64 });
      const w = base instanceof Nf4Linear ? dequantizeNf4(base.state) : w0;
      const a = uniform(r * inp, -0.3, 0.3, 25);
      const b = uniform(out * r, -0.3, 0.3, 26); // B non-zero so every gradient path is exercised
      const layer = new LoraLinear(base, { r, scaling: s, seed: 1, a, b });
      const xs = uniform(n * inp, -1, 1, 27);
      const p = uniform(n * out, -1, 1, 28);
      const ref = reference(n, inp, out, r, s, xs, w, a, b, p, bias);

      const x = tf.variable(tf.tensor3d(xs, [1, n, inp]), true);
      const pt = tf.tensor3d(p, [1, n, out]);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x), pt)) as tf.Scalar);
      expect(Object.keys(grads).sort()).toEqual([x.name, layer.loraA.name, layer.loraB.name].sort());
      expectClose(read(tf.tidy(() => layer.apply(x))), ref.y, 1e-5, 1e-5);
      expect(value.dataSync()[0]).toBeCloseTo(ref.loss, 3);
      expectClose(read(grads[x.name]!), ref.dx, 1e-5, 1e-4);
      expectClose(read(grads[layer.loraA.name]!), ref.dA, 1e-5, 1e-4);
      expectClose(read(grads[layer.loraB.name]!), ref.dB, 1e-5, 1e-4);

      // The float64 formulas against central finite differences of the float64 loss.
      const lossWith = (xx: ArrayLike<number>, aa: ArrayLike<number>, bb: ArrayLike<number>): number =>
        reference(n, inp, out, r, s, xx, w, aa, bb, p, bias).loss;
      const h = 1e-3;
      const fd = (arr: Float32Array, i: number, f: (v: Float64Array) => number): number => {
        const plus = Float64Array.from(arr);
        const minus = Float64Array.from(arr);
        plus[i] = arr[i]! + h;
        minus[i] = arr[i]! - h;
        return (f(plus) - f(minus)) / (2 * h);
      };
      for (const i of [0, 7, a.length - 1]) expect(fd(a, i, (v) => lossWith(xs, v, b))).toBeCloseTo(ref.dA[i]!, 6);
      for (const i of [0, 5, b.length - 1]) expect(fd(b, i, (v) => lossWith(xs, a, v))).toBeCloseTo(ref.dB[i]!, 6);
      for (const i of [0, 11, xs.length - 1]) expect(fd(xs, i, (v) => lossWith(v, a, b))).toBeCloseTo(ref.dx[i]!, 6);

      tf.dispose([x, pt, value, ...Object.values(grads)]);
      layer.dispose();
    });
  }

  it('starts as the base layer: A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0, reproducible per seed and path', () => {
    const inp = 37;
    const make = (path: string, seed: number): LoraLinear => new LoraLinear(denseLinear(path, 13, inp, 3), { r: 4, scaling: 2, seed });
    const l1 = make('m.key', 7);
    const { a, b } = l1.weights();
    const bound = 1 / Math.sqrt(inp);
    expect(a.every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.8 * bound);
    expect(b.every((v) => v === 0)).toBe(true);
    const x = tf.tensor2d(uniform(3 * inp, -1, 1, 4), [3, inp]);
    expectClose(read(l1.apply(x)), read(l1.base.apply(x)), 0);
    const [same, otherPath, otherSeed] = [make('m.key', 7), make('m.value', 7), make('m.key', 8)];
    expect(same.weights().a).toEqual(a);
    expect(otherPath.weights().a).not.toEqual(a);
    expect(otherSeed.weights().a).not.toEqual(a);
    for (const l of [l1, same, otherPath, otherSeed]) l.dispose();
    x.dispose();
  });

  it('drops adapter inputs only while training, with masks fixed by seed, step and call', () => {
    const one = (seed: number): LoraLinear => new LoraLinear(denseLinear('d', 1, 1, 5), {
      r: 1, scaling: 1, dropout: 0.5, seed, a: Float32Array.of(1), b: Float32Array.of(1),
    });
    const x = tf.ones([4000, 1]);
    const delta = (l: LoraLinear): Float32Array => tf.tidy(() => read(tf.sub(l.apply(x), l.base.apply(x))));
    const l = one(3);
    expect(delta(l).every((v) => Math.abs(v - 1) < 1e-6)).toBe(true); // eval: no dropout
    l.setTraining(true, 5);
    const d1 = delta(l);
    expect(d1.every((v) => v === 0 || Math.abs(v - 2) < 1e-6)).toBe(true); // inverted dropout: 0 or 1/(1-p)
    const kept = d1.filter((v) => v !== 0).length / d1.length;
    expect(kept).toBeGreaterThan(0.45);
    expect(kept).toBeLessThan(0.55);
    const d2 = delta(l);
    expect(d2).not.toEqual(d1); // a second call in the same step draws a new mask
    l.setTraining(true, 5);
    expect(delta(l)).toEqual(d1); // the same step replays the same masks
    const twin = one(3);
    setLoraTraining([twin], true, 5);
    expect(delta(twin)).toEqual(d1);
    twin.setTraining(true, 6);
    expect(delta(twin)).not.toEqual(d1);
    expect(l.training).toBe(true);
    l.setTraining(false);
    expect(delta(l).every((v) => Math.abs(v - 1) < 1e-6)).toBe(true);
    tf.dispose(x);
    l.dispose();
    twin.dispose();
  });

  it('leaks no tensors in forward and backward', () => {
    const layer = new LoraLinear(Nf4Linear.fromDense('q', uniform(13 * 37, -1, 1, 6), [13, 37]), { r: 3, scaling: 2, dropout: 0.1, seed: 1 });
    layer.setTraining(true, 0);
    const x = tf.tensor3d(uniform(2 * 3 * 37, -1, 1, 7), [2, 3, 37]);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.sum(layer.apply(x)) as tf.Scalar, layer.trainableVariables());
    expect(tf.memory().numTensors).toBe(before + 3);
    tf.dispose([value, ...Object.values(grads), x]);
    layer.dispose();
  });
});

describe('injectLora', () => {
  it('replaces the targeted linears in place and returns them in module order', () => {
    const linears = rwkvLinears();
    const base0 = linears.get('rwkv.blocks.0.attention.key')!;
    const config: LoraConfig = { ...defaultLoraConfig('rwkv'), targetModules: ['attention.key', 'attention.value'] };
    const layers = injectLora(linears, config, 42);
    expect(layers.map((l) => l.path)).toEqual([
      'rwkv.blocks.0.attention.key', 'rwkv.blocks.0.attention.value', 'rwkv.blocks.1.attention.key', 'rwkv.blocks.1.attention.value',
    ]);
    expect(linears.get('rwkv.blocks.0.attention.key')).toBe(layers[0]);
    expect(layers[0]!.base).toBe(base0);
    expect(layers[0]!.scaling).toBe(2);
    expect(layers[0]!.dropout).toBe(0.05);
    expect(trainableVariables(layers)).toHaveLength(8);
    expect(trainableVariables(layers).every((v) => v.trainable)).toBe(true);
    expect(() => injectLora(linears, config, 42)).toThrow(/already has a LoRA adapter/);

    // the same seed gives the same adapters
    const again = rwkvLinears();
    const layers2 = injectLora(again, config, 42);
    expect(layers2.map((l) => l.weights().a)).toEqual(layers.map((l) => l.weights().a));
    disposeAll(linears);
    disposeAll(again);
  });

  it('follows rank_pattern / alpha_pattern and rsLoRA', () => {
    const linears = rwkvLinears(1);
    const config: LoraConfig = {
      ...defaultLoraConfig('rwkv'), targetModules: ['attention.key', 'attention.value'],
      rankPattern: { 'attention.value': 2 }, alphaPattern: { 'attention.value': 4 }, useRslora: true,
    };
    const [k, v] = injectLora(linears, config, 1);
    expect([k!.r, k!.scaling]).toEqual([8, 16 / Math.sqrt(8)]);
    expect([v!.r, v!.scaling, v!.loraA.shape, v!.loraB.shape]).toEqual([2, 4 / Math.sqrt(2), [2, 8], [8, 2]]);
    disposeAll(linears);
  });

  it('rejects bad configs with InputErrors and leaves the map untouched', () => {
    const linears = rwkvLinears(1);
    const before = [...linears.values()];
    for (const [bad, msg] of [
      [{ r: 0 }, /^LoRA config: r: must be a positive integer, found 0$/],
      [{ alpha: -1 }, /lora_alpha: must be a positive number, found -1/],
      [{ dropout: 1 }, /lora_dropout: must be in \[0, 1\), found 1/],
      [{ targetModules: [] }, /target_modules: must name at least one module/],
      [{ targetModules: ['nope'] }, /target "nope" matches no module/],
    ] as const) {
      expect(() => injectLora(linears, { ...defaultLoraConfig('rwkv'), ...bad } as LoraConfig, 1)).toThrow(InputError);
      expect(() => injectLora(linears, { ...defaultLoraConfig('rwkv'), ...bad } as LoraConfig, 1)).toThrow(msg);
    }
    const initial = new Map([['rwkv.blocks.0.attention.value', { a: new Float32Array(3), b: new Float32Array(3) }]]);
    expect(() => injectLora(linears, defaultLoraConfig('rwkv'), 1, { initial })).toThrow(/lora_A has 3 values, expected \[8, 8\]/);
    expect([...linears.values()]).toEqual(before);
    disposeAll(linears);
  });
});
