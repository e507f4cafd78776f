import { writeReport } from './run-report.js';

/**
 * Keeps report.html current during training. Each rewrite reads the whole metrics.jsonl, so with
 * log_every 1 on a long run it is rewritten at most every `minIntervalSeconds` unless forced (eval
 * steps, the end). A report that cannot be written is a warning, never a reason to stop training.
 */
export class ReportUpdater {
  private last = -Infinity;
  private warned = false;

  constructor(
    private readonly runDir: string,
    private readonly warn: (message: string) => void,
    private readonly minIntervalSeconds = 10,
    private readonly now: () => number = () => performance.now() / 1000,
  ) {}

  async update(force = false): Promise<void> {
    if (!force && this.now() - this.last < this.minIntervalSeconds) return;
    this.last = this.now();
    try {
      await writeReport(this.runDir);
    } catch (err) {
      if (!this.warned) this.warn(`warning: report.html not updated: ${err instanceof Error ? err.message : String(err)}`);
      this.warned = true;
    }
  }
}
