/** A LoRA adapter around a frozen linear: y = base(x) + (dropout(x) A^T B^T) * scaling. */
import * as tf from '@tensorflow/tfjs-core';
import type { LinearLayer } from '../models/types.js';
import { moduleRankAndScaling, validateLoraConfig, type LoraConfig } from './config.js';
import { matchTargets, type MatchOptions } from './match.js';
import { dropoutMask, hashString, mixSeed, uniformValues } from '../random/rng.js';
import { matMul } from '../engine/matmul.js';

export interface LoraLinearOptions {
  readonly r: number;
  readonly scaling: number;
  /** dropout probability on the adapter's input while training (default 0) */
  readonly dropout?: number;
  /** seeds the initial A and the dropout masks */
  readonly seed: number;
  /** initial A [r, in] (default U(-1/sqrt(in), 1/sqrt(in)), PEFT's kaiming_uniform with a = sqrt(5)) */
  readonly a?: Float32Array;
  /** initial B [out, r] (default zeros) */
  readonly b?: Float32Array;
}

/** The seed of the adapter at `path` in a run seeded with `seed`: its initial A and its dropout masks derive from it. */
export function loraLayerSeed(seed: number, path: string): number {
  return mixSeed(seed >>> 0, hashString(path));
}

/** PEFT's initial A [r, in]: kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)). */
export function initialLoraA(layerSeed: number, r: number, inFeatures: number): Float32Array {
  const bound = 1 / Math.sqrt(inFeatures);
  return uniformValues(r * inFeatures, -bound, bound, mixSeed(layerSeed, 0));
}

/** The dropout mask seed of an adapter's `call`-th use in micro-step `microStep` (every engine draws the same masks). */
export function dropoutSeed(layerSeed: number, microStep: number, call: number): number {
  return mixSeed(layerSeed, 1, microStep, call);
}

export class LoraLinear implements LinearLayer {
  readonly path: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly hasBias: boolean;
  readonly r: number;
  readonly scaling: number;
  readonly dropout: number;
  /** A [r, in], trainable float32 */
  readonly loraA: tf.Variable<tf.Rank.R2>;
  /** B [out, r], trainable float32 */
  readonly loraB: tf.Variable<tf.Rank.R2>;
  private readonly seed: number;
  private trainingMode = false;
  private step = 0;
  private calls = 0;

  constructor(readonly base: LinearLayer, options: LoraLinearOptions) {
    if (base instanceof LoraLinear) throw new Error(`${base.path}: already has a LoRA adapter`);
    const { r, scaling, dropout = 0 } = options;
    if (!Number.isInteger(r) || r < 1) throw new Error(`${base.path}: LoRA rank must be a positive integer, got ${r}`);
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`${base.path}: LoRA dropout must be in [0, 1), got ${dropout}`);
    this.path = base.path;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.hasBias = base.hasBias;
    this.r = r;
    this.scaling = scaling;
    this.dropout = dropout;
    this.seed = loraLayerSeed(options.seed, this.path);
    const a = options.a ?? initialLoraA(this.seed, r, this.inFeatures);
    const b = options.b ?? new Float32Array(this.outFeatures * r);
    this.loraA = this.variable(a, [r, this.inFeatures], 'A');
    this.loraB = this.variable(b, [this.outFeatures, r], 'B');
  }

  get training(): boolean {
    return this.trainingMode;
  }

  /**
   * Dropout is applied only while training. Masks depend on (seed, path, step, call within the
   * step), so a run resumed at `step` draws the same masks as the original.
   */
  setTraining(training: boolean, step = 0): void {
    this.trainingMode = training;
    this.step = step;
    this.calls = 0;
  }

  /**
   * How many dropout masks this step has drawn. Gradient checkpointing rewinds it before recomputing a
   * block so the recomputation sees the same masks as the forward pass.
   */
  get dropoutCursor(): number {
    return this.calls;
  }

  set dropoutCursor(calls: number) {
    this.calls = calls;
  }

  apply(x: tf.Tensor): tf.Tensor {
    if (x.shape[x.rank - 1] !== this.inFeatures) throw new Error(`${this.path}: input [${x.shape.join(', ')}] does not end in ${this.inFeatures}`);
    const lead = x.shape.slice(0, -1);
    const rows = x.size / this.inFeatures;
    const maskSeed = this.trainingMode && this.dropout > 0 ? dropoutSeed(this.seed, this.step, this.calls++) : undefined;
    return tf.tidy(() => {
      const x2 = tf.reshape(x, [rows, this.inFeatures]) as tf.Tensor2D;
      const y = this.base.inputGradient ? this.fused(x2, maskSeed) : this.composed(x2, maskSeed);
      return tf.reshape(y, [...lead, this.outFeatures]);
    });
  }

  private mask(rows: number, seed: number): tf.Tensor2D {
    return tf.tensor2d(dropoutMask(rows * this.inFeatures, this.dropout, seed), [rows, this.inFeatures]);
  }

  /** base(x) + (dropout(x) A^T) * scaling B^T in plain ops, differentiated by autograd. */
  private composed(x2: tf.Tensor2D, maskSeed: number | undefined): tf.Tensor {
    const y = this.base.apply(x2);
    const xm = maskSeed === undefined ? x2 : tf.mul(x2, this.mask(x2.shape[0], maskSeed));
    // the scaling applied on the narrow [rows, r] product
    const h = tf.mul(matMul(xm, this.loraA, false, true), this.scaling);
    return tf.add(y, matMul(h, this.loraB, false, true));
  }

  /**
   * The same as one op over a frozen base: backward keeps only x and the narrow h = dropout(x) A^T and
   * regenerates the dropout mask from its seed, instead of the tape holding the mask, the masked input,
   * the base output and the update (4 to 6 activations of the layer's width).
   */
  private fused(x2: tf.Tensor2D, maskSeed: number | undefined): tf.Tensor {
    const rows = x2.shape[0];
    const s = this.scaling;
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x, a, b] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const save = args[3] as tf.GradSaveFunc;
      const h = tf.tidy(() => matMul(maskSeed === undefined ? x : tf.mul(x, this.mask(rows, maskSeed)), a, false, true));
      save([x, a, b, h]);
      const value = tf.tidy(() => tf.add(this.base.apply(x), matMul(tf.mul(h, s), b, false, true)));
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, as, bs, hs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
          return tf.tidy(() => {
            const dy2 = dy as tf.Tensor2D;
            const mask = maskSeed === undefined ? undefined : this.mask(rows, maskSeed);
            const gh = tf.mul(matMul(dy2, bs), s); // [rows, r]
            const dA = matMul(gh, mask ? tf.mul(xs, mask) : xs, true, false);
            const dB = tf.mul(matMul(dy2, hs, true, false), s);
            const dxm = matMul(gh, as);
            const dx = tf.add(this.base.inputGradient!(dy2), mask ? tf.mul(dxm, mask) : dxm);
            return [dx, dA, dB];
          });
        },
      };
    });
    return op(x2, this.loraA, this.loraB);
  }

  trainableVariables(): tf.Variable[] {
    return [this.loraA, this.loraB];
  }

  /** Copies of A [r, in] and B [out, r]. */
  weights(): { a: Float32Array; b: Float32Array } {
    return { a: this.loraA.dataSync<'float32'>().slice(), b: this.loraB.dataSync<'float32'>().slice() };
  }

  /** Disposes A and B and hands back the base layer, still alive (to remove the adapter). */
  detach(): LinearLayer {
    this.loraA.dispose();
    this.loraB.dispose();
    return this.base;
  }

  /** Disposes the adapter and the wrapped base layer (the adapter owns it once it wraps it). */
  dispose(): void {
    this.detach().dispose();
  }

  private variable(values: Float32Array, shape: [number, number], which: string): tf.Variable<tf.Rank.R2> {
    if (values.length !== shape[0] * shape[1]) {
      throw new Error(`${this.path}: lora_${which} has ${values.length} values, expected [${shape.join(', ')}]`);
    }
    const init = tf.tensor2d(values, shape);
    const v = tf.variable(init, true);
    init.dispose();
    return v;
  }
}

/** Per-layer weights to start from instead of the random initialisation (e.g. a loaded adapter). */
export type InitialWeights = ReadonlyMap<string, { readonly a: Float32Array; readonly b: Float32Array }>;

/**
 * Wraps every linear that `config` targets in a LoraLinear, replacing it in `linears` in place;
 * returns the adapters in the map's order. Ranks and scalings follow rank_pattern / alpha_pattern.
 */
export function injectLora(
  linears: Map<string, LinearLayer>, config: LoraConfig, seed: number,
  options: MatchOptions & { readonly initial?: InitialWeights } = {},
): LoraLinear[] {
  validateLoraConfig(config);
  const paths = matchTargets(linears, config.targetModules, {
    layersToTransform: config.layersToTransform, layersPattern: config.layersPattern, ...options,
  });
  const already = paths.filter((p) => linears.get(p) instanceof LoraLinear);
  if (already.length > 0) throw new Error(`already has a LoRA adapter: ${already.join(', ')}`);
  const layers: LoraLinear[] = [];
  try {
    for (const p of paths) {
      const { r, scaling } = moduleRankAndScaling(config, p);
      const init = options.initial?.get(p);
      layers.push(new LoraLinear(linears.get(p)!, { r, scaling, dropout: config.dropout, seed, a: init?.a, b: init?.b }));
    }
  } catch (err) {
    for (const l of layers) l.detach();
    throw err;
  }
  for (const l of layers) linears.set(l.path, l);
  return layers;
}

/** Every trainable variable of the adapters, A then B per layer. */
export function trainableVariables(layers: readonly LoraLinear[]): tf.Variable[] {
  return layers.flatMap((l) => l.trainableVariables());
}

/** Switches dropout on (training) or off for all adapters, keyed to the optimizer step. */
export function setLoraTraining(layers: readonly LoraLinear[], training: boolean, step = 0): void {
  for (const l of layers) l.setTraining(training, step);
}
