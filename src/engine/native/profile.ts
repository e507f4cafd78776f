/**
 * Wall time per addon function, for `ditty bench`'s time split: a Proxy that times every call of
 * the addon it wraps (about a microsecond each, so only benchmarks use it).
 */
import type { NativeAddon } from './addon.js';

export interface AddonProfile {
  readonly addon: NativeAddon;
  /** milliseconds per function name since the last reset */
  readonly totals: Map<string, number>;
  enabled: boolean;
}

export function profiledAddon(inner: NativeAddon): AddonProfile {
  const totals = new Map<string, number>();
  const profile: AddonProfile = { addon: inner, totals, enabled: false };
  const wrapped = new Map<PropertyKey, unknown>();
  const proxy = new Proxy(inner, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      let w = wrapped.get(key);
      if (!w) {
        const fn = value as (...args: unknown[]) => unknown;
        w = (...args: unknown[]): unknown => {
          if (!profile.enabled) return fn.apply(target, args);
          const t = performance.now();
          try {
            return fn.apply(target, args);
          } finally {
            totals.set(key, (totals.get(key) ?? 0) + performance.now() - t);
          }
        };
        wrapped.set(key, w);
      }
      return w;
    },
  });
  return Object.assign(profile, { addon: proxy });
}
