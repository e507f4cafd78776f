/**
 * kill -9 at random moments during `ditty train` on the native engine (backend cpu), as
 * test/train/train.e2e.test.ts does on wasm: no half-written checkpoint under its final name, and
 * the resumed run has exactly the losses of an uninterrupted one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeMissing } from '../helpers/native.js';
import { sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-kill-native-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

describe.skipIf(!fixture.present || !dolly.present || nativeMissing)('kill -9 during training on the native engine', () => {
  it('never leaves a half-written checkpoint and resumes bit-exactly to the uninterrupted losses', async () => {
    const { killResumeTrials } = await import('../../scripts/kill-resume.js');
    // each kill lands 0-400 ms after the child's 1st or 2nd logged step (in the next step or in the
    // checkpoint write that follows the step line), however long the start takes on a loaded machine
    const report = await killResumeTrials({ trials: 3, steps: 8, seed: 7, workDir: tmpRoot, minMs: 0, maxMs: 400, afterSteps: 2, backend: 'cpu' });
    process.stderr.write(`engine parity (kill -9, cpu): ${report.kills} kills, ${report.checkpointsSeen} complete checkpoints audited after kills\n`);
    expect(report.problems).toEqual([]);
    expect(report.lossesMatch).toBe(true);
    // the kills came after training had started: the final run resumed from a checkpoint
    expect(report.checkpointsSeen).toBeGreaterThan(0);
  }, 600_000);
});
