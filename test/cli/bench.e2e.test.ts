import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { nativeMissing } from '../helpers/native.js';
import { sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-neox-parallel');

describe('ditty bench', () => {
  it.skipIf(!fixture.present)('times training steps of a shape given as a config.json, with random weights', async () => {
    const r = await runCli(['bench', '--model', path.join(fixture.path, 'config.json'), '--block-size', '16', '--batch-size', '2', '--steps', '1', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { tokensPerSecond: number; mfu: number; trainable: number; split: Record<string, number>; peakRssBytes: number };
    expect(out.tokensPerSecond).toBeGreaterThan(0);
    expect(out.mfu).toBeGreaterThan(0);
    expect(out.trainable).toBe(2 * (8 * 32 + 96 * 8));
    const parts = Object.values(out.split).reduce((a, b) => a + b, 0);
    expect(parts).toBeGreaterThan(0.99);
    expect(out.split['gemm']).toBeGreaterThan(0);
  });

  it('prints the figures and the command for a named shape, and rejects an unknown one', async () => {
    const r = await runCli(['bench', '--model', 'pythia-70m', '--block-size', '8', '--steps', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ditty bench --model pythia-70m --block-size 8/);
    expect(r.stdout).toMatch(/tokens\/s/);
    expect(r.stdout).toMatch(/MFU/);
    expect(r.stdout).toMatch(/time split: dequant .*GEMM .*WKV\/attention .*other/);
    const bad = await runCli(['bench', '--model', 'llama-7b']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/not a known shape/);
    const folder = await runCli(['bench', '--model', os.tmpdir()]);
    expect(folder.status).toBe(1);
    expect(folder.stderr).toMatch(/^ditty: error: .*: cannot read the model config/);
    expect(folder.stderr).not.toMatch(/internal error/);
    const policy = await runCli(['bench', '--checkpointing', 'some']);
    expect(policy.status).toBe(1);
    expect(policy.stderr).toMatch(/--checkpointing must be one of none, selective, full, got "some"/);
  });

  it.skipIf(nativeMissing)('runs the native engine with every checkpointing policy and reports it', async () => {
    for (const policy of ['none', 'selective', 'full']) {
      const r = await runCli(['bench', '--model', 'pythia-70m', '--backend', 'cpu', '--block-size', '8', '--steps', '1', '--warmup', '0', '--checkpointing', policy, '--json']);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { checkpointing: string; backend: string };
      expect(out.checkpointing).toBe(policy);
      expect(out.backend).toMatch(/^native cpu \(/);
    }
  });
});
