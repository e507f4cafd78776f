import * as fs from 'node:fs';
import type { LogEntry } from './checkpoint.js';

function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/** The live status line: step/total, loss, lr, tokens/s and ETA. */
export function formatProgress(e: LogEntry, total: number, etaSeconds: number): string {
  return `step ${e.step}/${total}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}  `
    + `grad_norm ${e.grad_norm.toFixed(3)}  ${e.tokens_per_s.toFixed(1)} tok/s  `
    + `elapsed ${duration(e.elapsed)}  eta ${duration(etaSeconds)}`
    + `${e.val_loss !== undefined ? `  val_loss ${e.val_loss.toFixed(4)}` : ''}`;
}

/** Writes the status line to stderr: redrawn in place on a terminal, one line per update otherwise. */
export class ProgressLine {
  private drawn = false;
  private readonly tty = process.stderr.isTTY === true;

  update(line: string): void {
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else {
      process.stderr.write(`${line}\n`);
    }
  }

  /** Print a message above the status line. */
  log(message: string): void {
    if (this.drawn) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${message}\n`);
    this.drawn = false;
  }

  done(): void {
    if (this.drawn) process.stderr.write('\n');
    this.drawn = false;
  }
}

/** metrics.jsonl: one JSON object per optimizer step. */
export class MetricsFile {
  constructor(readonly file: string) {}

  /** Keep only the entries up to `step` (a resumed run rewrites what came after its checkpoint). */
  truncateAfter(step: number): void {
    if (!fs.existsSync(this.file)) return;
    const kept = fs.readFileSync(this.file, 'utf8').split('\n').filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
    fs.writeFileSync(this.file, kept.map((l) => `${l}\n`).join(''));
  }

  append(entry: LogEntry): void {
    fs.appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
  }
}
