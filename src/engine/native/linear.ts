/**
 * A frozen linear on the native engine (NF4 packed in the bitsandbytes layout, or dense float32) with
 * an optional LoRA adapter whose A, B and their gradients are views into the engine's flat
 * parameter and gradient buffers. Forward keeps h = dropout(x) A^T for backward; the dropout mask is
 * regenerated from its seed, never stored.
 */
import type { BufferId, Nf4Handles } from './addon.js';
import type { Buf, NativeDevice } from './device.js';

export type BaseWeight =
  | { readonly kind: 'nf4'; readonly handles: Nf4Handles; readonly buffers: readonly Buf[] }
  | { readonly kind: 'dense'; readonly weight: Buf };

export interface LoraSlot {
  readonly r: number;
  readonly scaling: number;
  readonly dropout: number;
  /** views of the engine's flat buffers: A [r, in], B [out, r] and their gradients */
  readonly a: BufferId;
  readonly b: BufferId;
  readonly gradA: BufferId;
  readonly gradB: BufferId;
}

/** The dropout probability of a pass: the adapter's while training (a seed is given), 0 when scoring. */
function dropoutOf(l: LoraSlot, dropoutSeed: number | undefined): number {
  return dropoutSeed === undefined ? 0 : l.dropout;
}

export class NativeLinear {
  lora: LoraSlot | undefined;

  constructor(
    private readonly device: NativeDevice, readonly path: string, readonly outFeatures: number, readonly inFeatures: number,
    readonly base: BaseWeight, readonly bias: Buf | undefined,
  ) {}

  /**
   * y[rows, out] = x base^T + bias (+ the adapter). Returns h [rows, r] (the caller keeps it for
   * backward) when there is an adapter. `dropoutSeed` undefined: no dropout (evaluation).
   */
  forward(x: Buf, rows: number, y: Buf, dropoutSeed: number | undefined): Buf | undefined {
    const a = this.device.addon;
    const bias = this.bias?.id ?? -1;
    if (this.base.kind === 'nf4') a.nf4LinearForward(this.base.handles, bias, x.id, rows, y.id, false);
    else a.denseLinearForward(this.base.weight.id, bias, this.outFeatures, this.inFeatures, x.id, rows, y.id, false);
    const l = this.lora;
    if (!l) return undefined;
    const h = this.device.f32(rows * l.r);
    a.loraForward(x.id, rows, this.inFeatures, this.outFeatures, l.r, l.a, l.b, l.scaling, dropoutOf(l, dropoutSeed), dropoutSeed ?? 0, h.id, y.id);
    return h;
  }

  /**
   * The adapter's h = dropout(x) A^T alone (for a backward whose forward did not keep it): the
   * narrow product B h^T it also makes goes to a scratch buffer.
   */
  adapterInput(x: Buf, rows: number, dropoutSeed: number | undefined): Buf | undefined {
    const l = this.lora;
    if (!l) return undefined;
    const h = this.device.f32(rows * l.r);
    const scratch = this.device.act(rows * this.outFeatures);
    this.device.addon.loraForward(x.id, rows, this.inFeatures, this.outFeatures, l.r, l.a, l.b, l.scaling, dropoutOf(l, dropoutSeed), dropoutSeed ?? 0, h.id, scratch.id);
    this.device.release(scratch);
    return h;
  }

  /**
   * Adds the adapter's gradients for dy and writes dx = dy base (+ the adapter's share) when dx is
   * given (the input of the first layers needs none: the embedding is frozen).
   */
  backward(x: Buf, h: Buf | undefined, dy: Buf, rows: number, dx: Buf | undefined, dropoutSeed: number | undefined): void {
    const a = this.device.addon;
    if (dx) {
      if (this.base.kind === 'nf4') a.nf4LinearInputGrad(this.base.handles, dy.id, rows, dx.id, false);
      else a.denseLinearInputGrad(this.base.weight.id, this.outFeatures, this.inFeatures, dy.id, rows, dx.id, false);
    }
    const l = this.lora;
    if (!l || !h) return;
    a.loraBackward(x.id, h.id, dy.id, rows, this.inFeatures, this.outFeatures, l.r, l.a, l.b, l.scaling, dropoutOf(l, dropoutSeed), dropoutSeed ?? 0,
      l.gradA, l.gradB, dx?.id ?? -1);
  }

  dispose(): void {
    if (this.base.kind === 'nf4') this.device.free(...this.base.buffers);
    else this.device.free(this.base.weight);
    this.device.free(this.bias);
  }
}
