import { describe, expect, it } from 'vitest';
import { formatDuration, formatProgress } from '../../src/train/progress.js';

describe('formatDuration', () => {
  it('minutes and seconds under an hour, hours and minutes above', () => {
    expect(formatDuration(0)).toBe('0m00s');
    expect(formatDuration(59.4)).toBe('0m59s');
    expect(formatDuration(59.6)).toBe('1m00s');
    expect(formatDuration(61)).toBe('1m01s');
    expect(formatDuration(3599)).toBe('59m59s');
    expect(formatDuration(3600)).toBe('1h00m');
    expect(formatDuration(3 * 3600 + 7 * 60 + 50)).toBe('3h07m');
    expect(formatDuration(100 * 3600)).toBe('100h00m');
  });

  it('an unknown time is "?"', () => {
    for (const s of [Number.NaN, Infinity, -1]) expect(formatDuration(s)).toBe('?');
  });
});

describe('formatProgress', () => {
  const entry = { step: 12, loss: 2.345678, lr: 0.0003, grad_norm: 0.98765, tokens: 1024, micro_batches: 2,
    tokens_per_s: 512.345, elapsed: 75, epoch: 0.5 };
  it('names step/total, loss, lr, grad norm, throughput, elapsed and ETA', () => {
    expect(formatProgress(entry, 100, 3700)).toBe(
      'step 12/100  loss 2.3457  lr 3.00e-4  grad_norm 0.988  512.3 tok/s  elapsed 1m15s  eta 1h01m');
  });
  it('adds the validation loss when the step was validated', () => {
    expect(formatProgress({ ...entry, val_loss: 2.5 }, 100, 10)).toMatch(/eta 0m10s {2}val_loss 2\.5000$/);
  });
});
