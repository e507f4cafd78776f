import type { DataSection } from '../config/schema.js';
import { Rng } from '../random/rng.js';

/** Fisher–Yates shuffle in place, drawing from `rng`; returns `items`. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/** A shuffled copy of `items`, the same for the same seed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  return shuffleInPlace([...items], new Rng(seed));
}

/** How many of n rows go to validation: round(n * fraction), at least 1 when fraction > 0 and n >= 2, and never all. */
export function validationCount(n: number, fraction: number): number {
  if (fraction <= 0 || n < 2) return 0;
  return Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
}

/** Split rows (already in their final order) into train and validation: validation takes the last rows. */
export function splitValidation<T>(rows: readonly T[], fraction: number): { train: T[]; validation: T[] } {
  const cut = rows.length - validationCount(rows.length, fraction);
  return { train: rows.slice(0, cut), validation: rows.slice(cut) };
}

/**
 * A run's train/validation split of its rows (in file order): shuffled with Rng(seed) when
 * data.shuffle, then the last data.validation_fraction to validation. prepareDataset splits with it,
 * and held-out scoring repeats it to find the rows a run held out.
 */
export function splitRows<T>(
  rows: readonly T[], data: Pick<DataSection, 'shuffle' | 'validation_fraction'>, seed: number,
): { train: T[]; validation: T[] } {
  const ordered = [...rows];
  if (data.shuffle) shuffleInPlace(ordered, new Rng(seed));
  return splitValidation(ordered, data.validation_fraction);
}
