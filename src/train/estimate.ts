/** The time a whole run will take, projected from the steps measured so far. */

export interface RunEstimateInput {
  /** seconds of one optimizer step after warm-up */
  readonly stepSeconds: number;
  readonly remainingSteps: number;
  /** blocks one optimizer step computes forward and backward */
  readonly blocksPerStep: number;
  readonly validationBlocks: number;
  /** validation passes still to come */
  readonly validationRounds: number;
  /** seconds one round of sample generations took, when measured */
  readonly sampleSeconds?: number;
  readonly sampleRounds: number;
}

/**
 * Seconds the rest of the run will take: the steps at the measured rate, plus the validation passes
 * (a forward pass costs about a third of forward and backward) and the sample rounds.
 */
export function remainingSeconds(e: RunEstimateInput): number {
  const perBlock = e.stepSeconds / Math.max(1, e.blocksPerStep);
  const validation = e.validationRounds * e.validationBlocks * (perBlock / 3);
  return e.remainingSteps * e.stepSeconds + validation + e.sampleRounds * (e.sampleSeconds ?? 0);
}

/** Steps in (from, to] at which something every `every` steps, and at the last step, happens. */
export function roundsBetween(from: number, to: number, every: number | undefined): number {
  if (to <= from) return 0;
  const periodic = every === undefined ? 0 : Math.floor(to / every) - Math.floor(from / every);
  return periodic + (every !== undefined && to % every === 0 ? 0 : 1);
}
