import { describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/train/checkpoint.js';
import { formatProgress, ProgressLine, type TextStream } from '../../src/train/progress.js';

class FakeStream implements TextStream {
  text = '';
  constructor(readonly isTTY: boolean, readonly columns?: number) {}
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

const entry = (step: number, extra: Partial<LogEntry> = {}): LogEntry => ({
  step, loss: 10 - step / 10, lr: 3e-3, grad_norm: 1.25, tokens: 256, micro_batches: 2, tokens_per_s: 500, elapsed: step, epoch: 0, ...extra,
});

/** What a terminal shows: \r returns to the line start, ESC[2K clears the line. */
function screen(text: string): string[] {
  const lines: string[] = [''];
  for (const part of text.split(/(\r|\x1b\[2K|\n)/)) {
    if (part === '\n') lines.push('');
    else if (part === '\r' || part === '\x1b[2K') lines[lines.length - 1] = '';
    else lines[lines.length - 1] += part;
  }
  return lines;
}

/** The trainer's calls for 6 steps with log_every 3: live status on every step, a logged line every 3rd. */
function drive(p: ProgressLine): void {
  p.log('model tiny loaded');
  for (let s = 1; s <= 6; s++) {
    const line = formatProgress(entry(s), 6, 6 - s);
    if (s % 3 === 0) p.update(line);
    else p.status(line);
  }
  p.log('a message mid-run');
  p.done();
}

describe('ProgressLine on a terminal', () => {
  it('redraws a live line in place on stderr and leaves a permanent line on stdout every log_every steps', () => {
    const out = new FakeStream(true);
    const err = new FakeStream(true, 200);
    drive(new ProgressLine({ out, err }));
    expect(out.text.split('\n').filter(Boolean).map((l) => l.split('  ')[0])).toEqual(['step 3/6', 'step 6/6']);
    expect(out.text).not.toMatch(/[\r\x1b]/);
    expect(err.text).toContain('\r\x1b[2Kstep 1/6');
    expect(err.text).toContain('\r\x1b[2Kstep 5/6');
    // after done() the live line is gone: the terminal shows only the messages
    expect(screen(err.text).filter(Boolean)).toEqual(['model tiny loaded', 'a message mid-run']);
  });

  it('cuts the live line to the terminal width so that \\r can redraw it', () => {
    const err = new FakeStream(true, 40);
    new ProgressLine({ out: new FakeStream(true), err }).status(formatProgress(entry(1), 6, 5));
    expect(screen(err.text).at(-1)!.length).toBeLessThanOrEqual(39);
    // a pseudo-terminal without a size reports 0 columns
    const sizeless = new FakeStream(true, 0);
    new ProgressLine({ out: new FakeStream(true), err: sizeless }).status('step 1/6  loss 9.9000  lr 3.00e-3');
    expect(screen(sizeless.text).at(-1)).toBe('step 1/6  loss 9.9000  lr 3.00e-3');
  });

  it('keeps the live line below a message logged between steps', () => {
    const err = new FakeStream(true, 200);
    const p = new ProgressLine({ out: new FakeStream(true), err });
    p.status('step 1/6  loss 9.9');
    p.log('warning: something');
    expect(screen(err.text)).toEqual(['warning: something', 'step 1/6  loss 9.9']);
  });
});

describe('ProgressLine not on a terminal', () => {
  it('writes one plain line per logged step to stdout, never a carriage return or escape', () => {
    const out = new FakeStream(false);
    const err = new FakeStream(false);
    drive(new ProgressLine({ out, err }));
    const lines = out.text.split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines.slice(0, -1)).toEqual([formatProgress(entry(3), 6, 3), formatProgress(entry(6), 6, 0)]);
    expect(out.text + err.text).not.toMatch(/[\r\x1b]/);
    expect(err.text).toBe('model tiny loaded\na message mid-run\n');
  });

  it('a logged line is greppable: step, loss, lr, grad norm, tokens/s, val_loss', () => {
    const line = formatProgress(entry(10, { val_loss: 9.5 }), 30, 20);
    expect(line).toMatch(/^step 10\/30  loss 9\.0000  lr 3\.00e-3  grad_norm 1\.250  500\.0 tok\/s  elapsed 0m10s  eta 0m20s  val_loss 9\.5000$/);
  });
});
