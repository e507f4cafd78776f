/** The native addon for tests: skip visibly where it was not built. */
import { loadAddon, type NativeAddon } from '../../src/engine/native/addon.js';

const load = loadAddon();
export const nativeAddon: NativeAddon | undefined = load.addon;
/** for describe.skipIf / it.skipIf titles */
export const nativeMissing = load.addon === undefined;
if (load.reason) process.stderr.write(`skipping native engine tests: ${load.reason}\n`);

/** The addon or a failed expectation (inside tests that are skipped when it is missing). */
export function addon(): NativeAddon {
  if (!load.addon) throw new Error(load.reason);
  return load.addon;
}

/** Upload a Float32Array into a new f32 buffer. */
export function f32Buffer(values: Float32Array | readonly number[]): number {
  const a = addon();
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  const id = a.alloc(0, data.length);
  a.write(id, data, 0);
  return id;
}

export function readF32(id: number, count: number): Float32Array {
  const out = new Float32Array(count);
  addon().read(id, out, 0);
  return out;
}

/** Largest |a - b| / (|b| + floor) over the arrays. */
export function maxRelativeError(a: Float32Array, b: Float32Array, floor = 1e-6): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + floor));
  return worst;
}
