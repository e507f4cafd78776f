export type LrScheduler = 'constant' | 'linear' | 'cosine';

/**
 * Learning rate for optimizer step `step` (0-based), as transformers' get_scheduler computes it:
 * linear warmup from 0 over `warmup` steps, then constant, linear decay to 0, or half-cosine to 0
 * at `total` steps.
 */
export function learningRate(kind: LrScheduler, base: number, step: number, warmup: number, total: number): number {
  if (step < warmup) return (base * step) / Math.max(1, warmup);
  if (kind === 'constant') return base;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (kind === 'linear') return base * Math.max(0, 1 - progress);
  return base * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
