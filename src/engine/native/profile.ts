/**
 * Wall time per addon function, for `ditty bench`'s time split: `addon` is a Proxy that times every
 * call while `enabled` (about a microsecond each, so only benchmarks use it).
 */
import type { NativeAddon } from './addon.js';

export class AddonProfile {
  enabled = false;
  /** called after each timed call when set: on cuda, makes a call's wall time its device time */
  synchronize: (() => void) | undefined;
  /** milliseconds per function name */
  readonly totals = new Map<string, number>();
  readonly addon: NativeAddon;

  constructor(inner: NativeAddon) {
    const wrapped = new Map<string, unknown>();
    const timed = (name: string, fn: (...args: unknown[]) => unknown) => (...args: unknown[]): unknown => {
      if (!this.enabled) return fn.apply(inner, args);
      const t = performance.now();
      try {
        const out = fn.apply(inner, args);
        this.synchronize?.();
        return out;
      } finally {
        this.totals.set(name, (this.totals.get(name) ?? 0) + performance.now() - t);
      }
    };
    this.addon = new Proxy(inner, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function' || typeof key !== 'string') return value;
        if (!wrapped.has(key)) wrapped.set(key, timed(key, value as (...args: unknown[]) => unknown));
        return wrapped.get(key);
      },
    });
  }
}
