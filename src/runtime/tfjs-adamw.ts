import * as tf from '@tensorflow/tfjs-core';
import type { AdamWSettings, OptimizerSlot } from '../engine/engine.js';

/** Optimizer state of one parameter, exportable to a checkpoint. */
export type AdamWSlot = OptimizerSlot;

/**
 * AdamW with decoupled weight decay, the update torch.optim.AdamW makes:
 * p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
export class AdamW {
  private readonly m = new Map<string, tf.Tensor>();
  private readonly v = new Map<string, tf.Tensor>();
  /** optimizer steps taken */
  stepCount = 0;

  constructor(private readonly params: ReadonlyMap<string, tf.Variable>, private readonly opts: AdamWSettings) {
    for (const [name, p] of params) {
      this.m.set(name, tf.keep(tf.zerosLike(p)));
      this.v.set(name, tf.keep(tf.zerosLike(p)));
    }
  }

  step(grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.stepCount++;
    const { beta1: b1, beta2: b2, epsilon, weightDecay } = this.opts;
    const bc1 = 1 - b1 ** this.stepCount;
    const bc2Sqrt = Math.sqrt(1 - b2 ** this.stepCount);
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g) throw new Error(`AdamW: no gradient for ${name}`);
      const [m, v] = tf.tidy(() => [
        tf.add(tf.mul(this.m.get(name)!, b1), tf.mul(g, 1 - b1)),
        tf.add(tf.mul(this.v.get(name)!, b2), tf.mul(tf.square(g), 1 - b2)),
      ]);
      this.m.get(name)!.dispose();
      this.v.get(name)!.dispose();
      this.m.set(name, tf.keep(m!));
      this.v.set(name, tf.keep(v!));
      tf.tidy(() => {
        const decayed = weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const denom = tf.add(tf.div(tf.sqrt(v!), bc2Sqrt), epsilon);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m!, denom), lr / bc1)));
      });
    }
  }

  exportState(): Map<string, AdamWSlot> {
    const out = new Map<string, AdamWSlot>();
    for (const name of this.params.keys()) {
      out.set(name, {
        expAvg: this.m.get(name)!.dataSync<'float32'>().slice(),
        expAvgSq: this.v.get(name)!.dataSync<'float32'>().slice(),
      });
    }
    return out;
  }

  importState(slots: ReadonlyMap<string, AdamWSlot>, stepCount: number): void {
    for (const [name, p] of this.params) {
      const slot = slots.get(name);
      if (!slot) throw new Error(`optimizer state has no entry for ${name}`);
      if (slot.expAvg.length !== p.size || slot.expAvgSq.length !== p.size) {
        throw new Error(`optimizer state for ${name} has ${slot.expAvg.length} values, the parameter has ${p.size}`);
      }
      this.m.get(name)!.dispose();
      this.v.get(name)!.dispose();
      this.m.set(name, tf.keep(tf.tensor(slot.expAvg, p.shape)));
      this.v.set(name, tf.keep(tf.tensor(slot.expAvgSq, p.shape)));
    }
    this.stepCount = stepCount;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** Global L2 norm of the gradients, and the gradients scaled down to `maxNorm` (torch clip_grad_norm_). */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): number {
  if (grads.size === 0) return 0;
  // one read-back for all gradients; summed in float64 in the gradients' order, as before
  const squares = tf.tidy(() => tf.stack([...grads.values()].map((g) => tf.sum(tf.square(g)))).dataSync<'float32'>());
  const norm = Math.sqrt(squares.reduce((s, x) => s + x, 0));
  if (maxNorm > 0) {
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) {
      for (const [name, g] of grads) {
        grads.set(name, tf.keep(tf.mul(g, coef)));
        g.dispose();
      }
    }
  }
  return norm;
}
