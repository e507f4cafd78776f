/**
 * Wall-clock time spent in the engine's hot spots (dequantization, matrix products, WKV), for
 * `ditty bench`. Off by default; when off, `timed` only checks a flag. On the CPU backends every op runs
 * synchronously, so wall time around a call is the op's time.
 */
export type TimerName = 'dequant' | 'gemm' | 'wkv';

const totals = new Map<TimerName, number>();
let enabled = false;
let depth = 0;

export function enableTimers(on: boolean): void {
  enabled = on;
  totals.clear();
}

/** Run `fn`, adding its time to `name` (nested timed calls count only in the outermost). */
export function timed<T>(name: TimerName, fn: () => T): T {
  if (!enabled || depth > 0) return fn();
  depth++;
  const start = performance.now();
  try {
    return fn();
  } finally {
    depth--;
    totals.set(name, (totals.get(name) ?? 0) + performance.now() - start);
  }
}

/** Milliseconds per timer since `enableTimers(true)`. */
export function timerTotals(): ReadonlyMap<TimerName, number> {
  return new Map(totals);
}
