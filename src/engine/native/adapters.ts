/**
 * Every LoRA tensor of a model in one flat float32 buffer, with gradients and AdamW moments laid
 * out the same way, so that clipping and AdamW are one kernel call each over all adapters; each
 * layer's A and B are views into it.
 */
import type { AdamWSettings, AdapterWeight, OptimizerSlot } from '../engine.js';
import type { Buf, NativeDevice } from './device.js';
import type { LoraSlot } from './linear.js';

export interface AdapterSpec {
  readonly keyA: string;
  readonly keyB: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly r: number;
  readonly scaling: number;
  readonly dropout: number;
  /** initial A [r, in] and B [out, r] */
  readonly a: Float32Array;
  readonly b: Float32Array;
}

interface Placed {
  readonly key: string;
  readonly shape: readonly [number, number];
  readonly offset: number;
  readonly count: number;
}

export class NativeAdapters {
  readonly slots: LoraSlot[] = [];
  readonly count: number;
  private readonly placed: Placed[] = [];
  private readonly params: Buf;
  private readonly grads: Buf;
  private readonly m: Buf;
  private readonly v: Buf;
  private readonly views: number[] = [];
  /** optimizer steps taken */
  private steps = 0;

  /** `adamw` undefined: the adapters can be used, not trained (step refuses). */
  constructor(private readonly device: NativeDevice, specs: readonly AdapterSpec[], private readonly adamw: AdamWSettings | undefined) {
    let offset = 0;
    for (const s of specs) {
      this.placed.push({ key: s.keyA, shape: [s.r, s.inFeatures], offset, count: s.a.length });
      offset += s.a.length;
      this.placed.push({ key: s.keyB, shape: [s.outFeatures, s.r], offset, count: s.b.length });
      offset += s.b.length;
    }
    this.count = offset;
    const a = device.addon;
    this.params = device.f32(offset);
    this.grads = device.f32(offset);
    this.m = device.f32(offset);
    this.v = device.f32(offset);
    for (const b of [this.grads, this.m, this.v]) a.fill(b.id, 0);
    specs.forEach((s, i) => {
      const pa = this.placed[2 * i]!, pb = this.placed[2 * i + 1]!;
      a.write(this.params.id, s.a, pa.offset);
      a.write(this.params.id, s.b, pb.offset);
      const view = (buf: Buf, p: Placed): number => {
        const id = a.view(buf.id, p.offset, p.count);
        this.views.push(id);
        return id;
      };
      this.slots.push({
        r: s.r, scaling: s.scaling, dropout: s.dropout,
        a: view(this.params, pa), b: view(this.params, pb), gradA: view(this.grads, pa), gradB: view(this.grads, pb),
      });
    });
  }

  get names(): string[] {
    return this.placed.map((p) => p.key);
  }

  /**
   * Global gradient norm; unless it is not finite, clip to maxNorm (0: no clipping) and take one
   * AdamW step. Gradients are zeroed either way.
   */
  step(lr: number, maxNorm: number): number {
    if (!this.adamw) throw new Error('these adapters were made without optimizer settings: they score and decode, they do not train');
    const a = this.device.addon;
    const norm = Math.sqrt(a.sumSquares(this.grads.id, this.count));
    if (Number.isFinite(norm)) {
      if (maxNorm > 0) {
        const coef = maxNorm / (norm + 1e-6);
        if (coef < 1) a.scaleInplace(this.grads.id, this.count, coef);
      }
      this.steps++;
      const { beta1, beta2, epsilon, weightDecay } = this.adamw;
      a.adamwStep(this.params.id, this.grads.id, this.m.id, this.v.id, this.count, lr, beta1, beta2, epsilon, weightDecay, this.steps);
    }
    a.fill(this.grads.id, 0);
    return norm;
  }

  tensors(): AdapterWeight[] {
    return this.placed.map((p) => ({ name: p.key, shape: p.shape, values: this.device.read(this.params, p.count, p.offset) }));
  }

  load(values: ReadonlyMap<string, Float32Array>, where: string, fail: (message: string) => Error): void {
    for (const p of this.placed) {
      const data = values.get(p.key);
      if (!data || data.length !== p.count) throw fail(`${where}: adapter tensor "${p.key}" is missing or has the wrong size for this LoRA config`);
    }
    for (const p of this.placed) this.device.addon.write(this.params.id, values.get(p.key)!, p.offset);
  }

  optimizerState(): { step: number; slots: Map<string, OptimizerSlot> } {
    const slots = new Map<string, OptimizerSlot>();
    for (const p of this.placed) {
      slots.set(p.key, { expAvg: this.device.read(this.m, p.count, p.offset), expAvgSq: this.device.read(this.v, p.count, p.offset) });
    }
    return { step: this.steps, slots };
  }

  loadOptimizerState(slots: ReadonlyMap<string, OptimizerSlot>, step: number, fail: (message: string) => Error): void {
    for (const p of this.placed) {
      const s = slots.get(p.key);
      if (!s) throw fail(`optimizer state has no entry for ${p.key}`);
      if (s.expAvg.length !== p.count || s.expAvgSq.length !== p.count) {
        throw fail(`optimizer state for ${p.key} has ${s.expAvg.length} values, the parameter has ${p.count}`);
      }
    }
    for (const p of this.placed) {
      const s = slots.get(p.key)!;
      this.device.addon.write(this.m.id, s.expAvg, p.offset);
      this.device.addon.write(this.v.id, s.expAvgSq, p.offset);
    }
    this.steps = step;
  }

  dispose(): void {
    for (const id of this.views) this.device.addon.free(id);
    this.device.free(this.params, this.grads, this.m, this.v);
  }
}
