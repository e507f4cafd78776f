/**
 * How `ditty train` stops on SIGINT or SIGTERM, however it was started:
 *  - before the first step (config, data, model loading): at once, saying that nothing was trained;
 *  - during training: after the current step, with a checkpoint, saying what was saved;
 *  - after the last step (held-out evaluation, report): at once, saying what is saved;
 *  - a second signal: at once, saying which checkpoint is the last complete one.
 * Started by npm (`npx ditty`, `npm run`), ditty is a grandchild that npm never passes a signal to,
 * and npm's exit leaves it running orphaned: the exit of that npm process counts as a SIGTERM.
 * SIGHUP is left alone, so that `nohup ditty train` keeps running when its terminal closes.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parentPid, processStartTime, processState } from '../io/process-state.js';

/** A Ctrl-C reaches ditty through the process group and may also be passed on by a wrapper: one press. */
const SAME_SIGNAL_MS = 500;
const PARENT_POLL_MS = 1000;
/** How far up the process tree the npm process is looked for (npm -> sh -c -> node). */
const NPM_DEPTH = 4;

export function exitCodeOf(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/** The npm (or npx) process this one runs under, with its start time, when npm started it. */
function npmAncestor(): { pid: number; start: string | undefined } | undefined {
  if (process.env.npm_command === undefined && process.env.npm_lifecycle_event === undefined) return undefined;
  let pid = parentPid(process.pid) ?? process.ppid;
  for (let depth = 0; depth < NPM_DEPTH && pid > 1; depth++) {
    let words: string[] = [];
    try {
      words = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/).filter((w) => w !== '');
    } catch {
      return undefined;
    }
    if (words.some((w, i) => /^(npm|npx)(-cli\.js)?$/.test(path.basename(w)) && (i === 0 || /node/.test(path.basename(words[0]!))))) {
      return { pid, start: processStartTime(pid) };
    }
    const up = parentPid(pid);
    if (up === undefined) return undefined;
    pid = up;
  }
  return undefined;
}

type Phase = 'setup' | 'training' | 'finished';

export class StopSignals {
  private signal: NodeJS.Signals | undefined;
  private at = 0;
  private phase: Phase = 'setup';
  private saved: () => string = () => 'nothing was trained or saved';
  private parentWatch: NodeJS.Timeout | undefined;
  private readonly handler = (sig: NodeJS.Signals): void => this.receive(sig);

  constructor(
    private readonly log: (message: string) => void,
    private readonly exit: (code: number) => void = (code) => process.exit(code),
  ) {}

  install(): this {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
    const npm = npmAncestor();
    if (npm !== undefined) {
      this.parentWatch = setInterval(() => {
        if (processState(npm.pid, npm.start) !== 'gone') return;
        clearInterval(this.parentWatch);
        this.log(`the npm process that started ditty (pid ${npm.pid}) has exited; stopping as for SIGTERM`);
        this.receive('SIGTERM');
      }, PARENT_POLL_MS).unref();
    }
    return this;
  }

  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
    clearInterval(this.parentWatch);
  }

  /** The signal that asked training to stop after its current step, if any. */
  get requested(): NodeJS.Signals | undefined {
    return this.signal;
  }

  /** The training loop runs: a signal stops it after the current step. `saved` says what is saved at any moment. */
  training(saved: () => string): void {
    this.phase = 'training';
    this.saved = saved;
  }

  /** The last step is done: a signal stops at once. */
  finished(saved: () => string): void {
    this.phase = 'finished';
    this.saved = saved;
  }

  private receive(sig: NodeJS.Signals): void {
    const now = Date.now();
    if (this.signal !== undefined) {
      if (now - this.at < SAME_SIGNAL_MS) return;
      this.log(`${sig} again: stopping now; ${this.saved()}`);
      this.exit(exitCodeOf(sig));
      return;
    }
    this.signal = sig;
    this.at = now;
    if (this.phase === 'training') {
      this.log(`${sig}: finishing this step, saving a checkpoint, then stopping (send it again to stop at once)`);
      return;
    }
    this.log(this.phase === 'setup' ? `${sig} before the first step: stopped; ${this.saved()}` : `${sig}: stopped; ${this.saved()}`);
    this.exit(exitCodeOf(sig));
  }
}
