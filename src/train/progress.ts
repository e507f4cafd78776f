import * as fs from 'node:fs';
import { writeBytesAtomic } from '../io/atomic.js';
import { withPath } from '../io/errors.js';
import { faultPoint } from '../io/fault-injection.js';
import type { LogEntry } from './checkpoint.js';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/** The status of one step: step/total, loss, lr, grad norm, tokens/s, elapsed, ETA (and val_loss when validated). */
export function formatProgress(e: LogEntry, total: number, etaSeconds: number): string {
  return `step ${e.step}/${total}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}  `
    + `grad_norm ${e.grad_norm.toFixed(3)}  ${e.tokens_per_s.toFixed(1)} tok/s  `
    + `elapsed ${formatDuration(e.elapsed)}  eta ${formatDuration(etaSeconds)}`
    + `${e.val_loss !== undefined ? `  val_loss ${e.val_loss.toFixed(4)}` : ''}`;
}

/** What ProgressLine writes to: process.stdout / process.stderr, or a fake in tests. */
export interface TextStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

const CLEAR_LINE = '\r\x1b[2K';

/**
 * Training output. Logged steps are permanent plain lines on stdout, so `ditty train ... > train.log`
 * keeps the loss history and can be grepped. Messages go to stderr. When stderr is a terminal, a live
 * line at the bottom is redrawn in place at every step; nothing with carriage returns ever goes to a
 * stream that is not a terminal.
 */
export class ProgressLine {
  private readonly out: TextStream;
  private readonly err: TextStream;
  private current: string | undefined;
  private drawn = false;

  constructor(streams: { out?: TextStream; err?: TextStream } = {}) {
    this.out = streams.out ?? process.stdout;
    this.err = streams.err ?? process.stderr;
  }

  private get live(): boolean {
    return this.err.isTTY === true;
  }

  private clear(): void {
    if (this.drawn) this.err.write(CLEAR_LINE);
    this.drawn = false;
  }

  private draw(): void {
    if (!this.live || this.current === undefined) return;
    // a line wider than the terminal wraps, and \r would then redraw only its last row
    const columns = this.err.columns !== undefined && this.err.columns > 0 ? this.err.columns : 120;
    const width = Math.max(20, columns - 1);
    const line = this.current.length > width ? `${this.current.slice(0, width - 1)}…` : this.current;
    this.err.write(`${CLEAR_LINE}${line}`);
    this.drawn = true;
  }

  /** A step that is not logged: redraws the live line on a terminal, writes nothing otherwise. */
  status(line: string): void {
    this.current = line;
    this.draw();
  }

  /** A logged step (every log_every steps, validation steps, the last step): a permanent line on stdout. */
  update(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
    // the live line would repeat what was just printed; the next step redraws it
    this.current = undefined;
  }

  /** A message on stderr, above the live line. */
  log(message: string): void {
    this.clear();
    this.err.write(`${message}\n`);
    this.draw();
  }

  /** Removes the live line; the permanent lines above it hold the history. */
  done(): void {
    this.clear();
    this.current = undefined;
  }
}

/** A JSON Lines file of records keyed by optimizer step: metrics.jsonl, samples.jsonl. */
export class MetricsFile<T extends { readonly step: number } = LogEntry> {
  constructor(readonly file: string) {}

  /** Keep only the entries up to `step` (a resumed run rewrites what came after its checkpoint); the file is replaced whole, never half-written. */
  async truncateAfter(step: number): Promise<void> {
    if (!fs.existsSync(this.file)) return;
    const kept = fs.readFileSync(this.file, 'utf8').split('\n').filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
    await writeBytesAtomic(this.file, kept.map((l) => `${l}\n`).join(''));
  }

  append(entry: T): void {
    try {
      faultPoint('append', this.file);
      fs.appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
    } catch (err) {
      throw withPath(err, this.file);
    }
  }
}
