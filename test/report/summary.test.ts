import { describe, expect, it } from 'vitest';
import type { StepMetrics } from '../../src/report/metrics.js';
import { displayPath, formatRunSummary } from '../../src/train/summary.js';

const entries: StepMetrics[] = [
  { step: 1, loss: 12.5, tokens: 256 }, { step: 2, loss: 11.9, tokens: 256, val_loss: 11.8 },
  { step: 3, loss: 11.2, tokens: 256 }, { step: 4, loss: 11.4, tokens: 256, val_loss: 11.1 },
];

describe('end-of-run summary', () => {
  const cwd = '/home/u/proj';
  const base = {
    runDir: '/home/u/proj/checkpoints/tiny', entries, configFile: 'configs/tiny.yaml', reportFile: '/home/u/proj/checkpoints/tiny/report.html',
    checkpoints: ['/home/u/proj/checkpoints/tiny/checkpoint-2', '/home/u/proj/checkpoints/tiny/checkpoint-4'],
  };

  it('gives steps, tokens, time, rate, first/last/best losses, where things are and how to go on', () => {
    const text = formatRunSummary({
      ...base, overrides: ['training.max_steps=4', 'data.max_rows=10'],
      outcome: { steps: 4, startStep: 0, tokens: 1024, seconds: 8, lastCheckpoint: '/home/u/proj/checkpoints/tiny/checkpoint-4' },
    }, cwd);
    expect(text).toMatch(/steps +4\n/);
    expect(text).toMatch(/tokens +1,024 in 0m08s \(128\.0 tokens\/s\)/);
    expect(text).toMatch(/train loss +first 12\.5000 \(step 1\), last 11\.4000 \(step 4\), best 11\.2000 \(step 3\)/);
    expect(text).toMatch(/val loss +first 11\.8000 \(step 2\), last 11\.1000 \(step 4\), best 11\.1000 \(step 4\)/);
    expect(text).toMatch(/adapter +checkpoints\/tiny\/checkpoint-4\n/);
    expect(text).toMatch(/report +checkpoints\/tiny\/report\.html/);
    expect(text).toMatch(/checkpoints +checkpoints\/tiny\/ \(checkpoint-2, checkpoint-4\)/);
    // the earlier max_steps is replaced, other overrides kept, so the command resumes the same run
    expect(text).toMatch(/train longer +ditty train configs\/tiny\.yaml --set data\.max_rows=10 --set training\.max_steps=8\n/);
    expect(text).toMatch(/export +ditty export checkpoints\/tiny --adapter OUT_DIR/);
  });

  it('an interrupted or resumed run says so and gives the resume command', () => {
    const text = formatRunSummary({
      ...base, entries: entries.slice(0, 3), overrides: ["data.dataset=my file.jsonl"],
      outcome: { steps: 3, startStep: 2, tokens: 768, seconds: 6, lastCheckpoint: '/elsewhere/ck-3', interrupted: 'SIGINT' },
    }, cwd);
    expect(text).toMatch(/steps +3 \(1 in this process, resumed at step 2\); stopped early by SIGINT/);
    expect(text).toMatch(/resume +ditty train configs\/tiny\.yaml --set 'data\.dataset=my file\.jsonl'/);
    expect(text).toMatch(/adapter +\/elsewhere\/ck-3/);
  });

  it('without validation or checkpoints it says there are none', () => {
    const text = formatRunSummary({
      ...base, entries: [{ step: 1, loss: 3 }], checkpoints: [], outcome: { steps: 1, startStep: 0, tokens: 10, seconds: 0 },
    }, cwd);
    expect(text).toMatch(/val loss +none/);
    expect(text).toMatch(/adapter +none written/);
    expect(text).toMatch(/checkpoints +none/);
    expect(text).not.toMatch(/export/);
  });

  it('shows paths outside the working folder as absolute', () => {
    expect(displayPath('/tmp/x', '/home/u')).toBe('/tmp/x');
    expect(displayPath('/home/u/a/b', '/home/u')).toBe('a/b');
  });
});
