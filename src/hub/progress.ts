import cliProgress from 'cli-progress';
import { isTruthy } from './env.js';

/** Progress of one file's download. `update` gets the bytes the file holds so far (resumed bytes included). */
export interface FileProgress {
  update(done: number): void;
  /** the file is complete */
  finish(): void;
  /** the download stopped without completing (error, interruption) */
  abort(): void;
}

/** Makes a FileProgress per downloaded file. */
export interface ProgressReporter {
  /** `startAt`: bytes already there from an earlier, interrupted attempt. */
  file(name: string, total: number, startAt: number): FileProgress;
  /** a one-line notice (waiting for another process's download) */
  note?(message: string): void;
}

const SILENT_FILE: FileProgress = { update() {}, finish() {}, abort() {} };

/** Reports nothing (tests, `progress: false`). */
export const silentProgress: ProgressReporter = { file: () => SILENT_FILE };

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface ConsoleProgressOptions {
  /** where to draw (default process.stderr) */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** files smaller than this get no bar and no line (default 1 MiB) */
  minBytes?: number;
  /** draw a live bar when the stream is a TTY (default: unless HF_HUB_DISABLE_PROGRESS_BARS is set) */
  bars?: boolean;
  /** clock in ms, for tests */
  now?: () => number;
}

/**
 * The default reporter: on a TTY a bar per large file (name, bytes done/total, bytes/s, ETA);
 * otherwise, or with bars disabled, one plain line per large file when it completes.
 */
export function consoleProgress(opts: ConsoleProgressOptions = {}): ProgressReporter {
  const stream = opts.stream ?? process.stderr;
  const minBytes = opts.minBytes ?? 1 << 20;
  const bars = (opts.bars ?? !isTruthy(process.env['HF_HUB_DISABLE_PROGRESS_BARS'])) && stream.isTTY === true;
  const now = opts.now ?? Date.now;

  return {
    note(message) { stream.write(`${message}\n`); },
    file(name, total, startAt) {
      if (total < minBytes) return SILENT_FILE;
      const t0 = now();
      let done = startAt;
      const rate = (): number => {
        const dt = (now() - t0) / 1000;
        return dt > 0 ? (done - startAt) / dt : 0;
      };
      const payload = () => {
        const r = rate();
        return {
          file: name,
          done_h: formatBytes(done),
          total_h: formatBytes(total),
          speed: `${formatBytes(r)}/s`,
          eta_h: r > 0 ? formatDuration((total - done) / r) : '?',
        };
      };
      const resumed = startAt > 0 ? ` (resumed at ${formatBytes(startAt)})` : '';

      if (!bars) {
        return {
          update(d) { done = d; },
          finish() {
            const dt = (now() - t0) / 1000;
            stream.write(`downloaded ${name}: ${formatBytes(total)} in ${formatDuration(dt)} (${formatBytes(rate())}/s)${resumed}\n`);
          },
          abort() {},
        };
      }

      const bar = new cliProgress.SingleBar(
        {
          stream,
          format: '{file} |{bar}| {percentage}% {done_h}/{total_h} {speed} ETA {eta_h}',
          hideCursor: true,
          barsize: 30,
          fps: 5,
          autopadding: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, startAt, payload());
      let stopped = false;
      const stop = () => { if (!stopped) { stopped = true; bar.stop(); } };
      return {
        update(d) { done = d; bar.update(d, payload()); },
        finish() { done = total; bar.update(total, payload()); stop(); },
        abort() { stop(); },
      };
    },
  };
}
