/**
 * What the native engine's per-architecture programs share: a block's saved buffers by name, the
 * pass a block runs in, and the contract each architecture implements (src/models/rwkv4-native.ts,
 * src/models/gpt-neox-native.ts), which the engine (src/runtime/native-engine.ts) drives block by
 * block under a checkpointing policy.
 */
import type { Buf, NativeDevice } from '../engine/native/device.js';

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
