import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { enableTimers, timed, timerTotals } from '../../src/engine/timers.js';

// a clock the test moves by hand, so the totals are exact whatever the machine's load
let now = 0;
const busy = (ms: number): void => { now += ms; };

describe('bench timers', () => {
  beforeEach(() => { vi.spyOn(performance, 'now').mockImplementation(() => now); });
  afterEach(() => { enableTimers(false); vi.restoreAllMocks(); });

  it('count nothing while off, and return the value either way', () => {
    enableTimers(false);
    expect(timed('gemm', () => 42)).toBe(42);
    expect(timerTotals().size).toBe(0);
  });

  it('add wall time per name; a nested timed call counts only in the outermost', () => {
    enableTimers(true);
    timed('gemm', () => busy(20));
    timed('dequant', () => {
      busy(10);
      timed('gemm', () => busy(30)); // inside dequant: counted as dequant
    });
    const t = timerTotals();
    expect(t.get('gemm')).toBe(20); // 50 if the nested call counted
    expect(t.get('dequant')).toBe(40);
    expect(t.has('wkv')).toBe(false);
  });

  it('count a call that throws, and stay balanced after it', () => {
    enableTimers(true);
    expect(() => timed('wkv', () => { busy(5); throw new Error('boom'); })).toThrow('boom');
    expect(timerTotals().get('wkv')).toBe(5);
    timed('gemm', () => busy(5));
    expect(timerTotals().get('gemm')).toBe(5);
  });

  it('enableTimers(true) starts from zero', () => {
    enableTimers(true);
    timed('gemm', () => busy(2));
    enableTimers(true);
    expect(timerTotals().size).toBe(0);
  });
});
