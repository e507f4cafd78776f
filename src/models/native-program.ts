/**
 * What the native engine's per-architecture programs share: a block's saved buffers by name, the
 * pass a block runs in, and the contract each architecture implements (src/models/rwkv4-native.ts,
 * src/models/gpt-neox-native.ts), which the engine (src/runtime/native-engine.ts) drives block by
 * block under a checkpointing policy.
 */
import type { Buf, NativeDevice } from '../engine/native/device.js';
import type { NativeLinear } from '../engine/native/linear.js';

/** A block's buffers by name; a missing name is computed again by `materialize`. */
export type Saved = Map<string, Buf>;

export interface PassContext {
  readonly B: number;
  readonly T: number;
  /**
   * Decoding: the recurrent state (RWKV) or KV cache (GPT-NeoX) of layer i, read and advanced by
   * materialize; `offset` tokens are already in it. Absent in training and scoring.
   */
  readonly decode?: { readonly offset: number; layer(i: number): Saved };
  /** the dropout seed of the adapter at `path` in this pass; undefined: no dropout (evaluation) */
  dropoutSeed(path: string): number | undefined;
}

export interface NativeBlockProgram {
  readonly numLayers: number;
  readonly hiddenSize: number;
  /**
   * Computes block `i`'s missing buffers from its input x [B*T, C] (everything on a first pass; only
   * the element-wise ones after `dropElementwise`) and, with `output`, returns the block's output.
   */
  materialize(i: number, x: Buf, saved: Saved, ctx: PassContext, output: boolean): Buf | undefined;
  /** A new empty decoding state for one layer (batch B). */
  initLayerState(B: number): Saved;
  /** Frees the buffers that selective checkpointing recomputes (everything but products' outputs and small statistics). */
  dropElementwise(saved: Saved): void;
  /**
   * Adds the adapters' gradients of block `i` for dout and returns dx [B*T, C] when `inputGrad`.
   * Needs a fully materialized `saved`.
   */
  backward(i: number, x: Buf, saved: Saved, dout: Buf, ctx: PassContext, inputGrad: boolean): Buf | undefined;
}

/** Returns every buffer of `saved` to the device's pool. */
export function releaseSaved(device: NativeDevice, saved: Saved): void {
  device.release(...saved.values());
  saved.clear();
}

/** saved.get(name), or a message naming the missing buffer (a program bug, not user input). */
export function need(saved: Saved, name: string): Buf {
  const b = saved.get(name);
  if (!b) throw new Error(`native program: buffer "${name}" was not materialized`);
  return b;
}

/** What both architectures' programs do the same way: parameter and linear lookups, layer norm, products. */
export abstract class NativeProgramBase {
  abstract readonly numLayers: number;
  /** the saved buffers selective checkpointing frees and `materialize` computes again */
  protected abstract readonly elementwise: readonly string[];

  protected constructor(
    protected readonly device: NativeDevice, readonly hiddenSize: number, private readonly eps: number,
    private readonly params: ReadonlyMap<string, Buf>, private readonly linears: ReadonlyMap<string, NativeLinear>,
  ) {}

  protected p(name: string): Buf {
    const b = this.params.get(name);
    if (!b) throw new Error(`${this.constructor.name}: no parameter ${name}`);
    return b;
  }

  protected linear(path: string): NativeLinear {
    const l = this.linears.get(path);
    if (!l) throw new Error(`${this.constructor.name}: no linear ${path}`);
    return l;
  }

  /** `saved` holds `name`, or gets it from `make` */
  protected static get(saved: Saved, name: string, make: () => Buf): Buf {
    let v = saved.get(name);
    if (!v) saved.set(name, (v = make()));
    return v;
  }

  /** LN(x; path) [rows, C] into a new buffer; its statistics are kept in `saved` under `${stats}.mean` / `.rstd`. */
  protected norm(x: Buf, path: string, saved: Saved, stats: string, rows: number): Buf {
    const C = this.hiddenSize;
    const out = this.device.act(rows * C);
    const mean = NativeProgramBase.get(saved, `${stats}.mean`, () => this.device.f32(rows));
    const rstd = NativeProgramBase.get(saved, `${stats}.rstd`, () => this.device.f32(rows));
    this.device.addon.layernormForward(x.id, this.p(`${path}.weight`).id, this.p(`${path}.bias`).id, rows, C, this.eps, out.id, mean.id, rstd.id);
    return out;
  }

  /** For one block's backward over `rows` rows: dx (+)= LN(input; path)'(dy), with the statistics kept in `saved` under `stats`. */
  protected normBackward(saved: Saved, rows: number): (dy: Buf, input: Buf, path: string, stats: string, dx: Buf, accumulate: boolean) => void {
    return (dy, input, path, stats, dx, accumulate) => this.device.addon.layernormBackward(dy.id, input.id, this.p(`${path}.weight`).id,
      need(saved, `${stats}.mean`).id, need(saved, `${stats}.rstd`).id, rows, this.hiddenSize, dx.id, accumulate);
  }

  /** y = linear(x) [rows, out] unless `saved` has it under `name`; the adapter's h is kept under `${name}.h`. */
  protected product(saved: Saved, name: string, path: string, x: Buf, rows: number, out: number, ctx: PassContext): Buf {
    const have = saved.get(name);
    if (have) return have;
    const y = this.device.act(rows * out);
    const h = this.linear(path).forward(x, rows, y, ctx.dropoutSeed(path));
    saved.set(name, y);
    if (h) saved.set(`${name}.h`, h);
    return y;
  }

  /** Frees the element-wise buffers from `saved` (what selective checkpointing recomputes). */
  dropElementwise(saved: Saved): void {
    for (const n of this.elementwise) {
      this.device.release(saved.get(n));
      saved.delete(n);
    }
  }
}
