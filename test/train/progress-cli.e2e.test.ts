import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const TINY = path.join(REPO_ROOT, 'configs', 'tiny.yaml');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-progress-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

describe.skipIf(!fixture.present || !dolly.present)('ditty train output when stdout is a file', () => {
  it('one plain line per logged step on stdout, a summary at the end, report.html in the run folder', async () => {
    const out = path.join(tmpRoot, 'piped');
    const r = await runCli(['train', TINY, '--set', `output.dir=${out}`, '--set', 'training.max_steps=4', '--set', 'training.log_every=2',
      '--set', 'training.eval_every=4', '--set', 'output.checkpoint_every=2']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/[\r\x1b]/);
    const steps = r.stdout.split('\n').filter((l) => l.startsWith('step '));
    expect(steps.map((l) => l.split('  ')[0])).toEqual(['step 2/4', 'step 4/4']);
    expect(steps[1]).toMatch(/ loss \d+\.\d{4} .* val_loss \d+\.\d{4}$/);
    expect(r.stdout).toMatch(/run summary\n {2}steps +4\n/);
    expect(r.stdout).toMatch(/train loss +first \d+\.\d{4} \(step 1\), last \d+\.\d{4} \(step 4\)/);
    expect(r.stdout).toMatch(/val loss +first \d+\.\d{4} \(step 4\)/);
    expect(r.stdout).toContain(`report        ${path.join(out, 'report.html')}`);
    expect(r.stdout).toContain(`checkpoints   ${out}/ (checkpoint-2, checkpoint-4)`);
    expect(r.stdout).toContain('train longer  ditty train');
    expect(fs.readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('data-name="train (raw)" data-points="4"');
  });

  it('refuses --resume together with --no-resume in one line, before loading anything', async () => {
    const r = await runCli(['train', TINY, '--resume', path.join(tmpRoot, 'x'), '--no-resume']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('ditty: error: --resume and --no-resume together: give --resume CHECKPOINT to continue from it, or --no-resume to start over\n');
    const other = await runCli(['train', TINY, '--no-resume', '--resume', path.join(tmpRoot, 'x')]);
    expect(other.stderr).toMatch(/--resume and --no-resume together/);
  });
});
