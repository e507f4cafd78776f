/**
 * The seeded, bounded fuzz run of the readers (the long run: scripts/fuzz-readers.ts). Every case
 * must be read correctly or refused with one InputError line; the same seed gives the same cases.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBases, makeCase, type Bases, type Kind } from '../../scripts/fuzz/cases.js';
import { runCase } from '../../scripts/fuzz/run-case.js';

const SEED = 20261130;
let bases: Bases;
let dir: string;
beforeAll(async () => {
  bases = await makeBases();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-fuzz-test-'));
});
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

async function fuzz(kind: Kind, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const bad: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = makeCase(bases, kind, i, SEED, true);
    const r = await runCase(c, dir);
    counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    if (r.outcome !== 'ok' && r.outcome !== 'clean') bad.push(`${kind} #${i} (${c.note}): ${r.outcome}: ${r.detail}`);
  }
  expect(bad).toEqual([]);
  return counts;
}

describe('seeded reader fuzz', () => {
  it('builds the same cases from the same seed', () => {
    for (const kind of ['safetensors', 'torch', 'legacy', 'yaml'] as const) {
      const a = makeCase(bases, kind, 7, SEED, true);
      const b = makeCase(bases, kind, 7, SEED, true);
      expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    }
  });

  it('safetensors: 150 mutations, each read correctly or refused cleanly', async () => {
    const counts = await fuzz('safetensors', 150);
    expect(counts['clean']).toBeGreaterThan(50);
  });

  it('torch zip: 150 mutations, each read correctly or refused cleanly', async () => {
    const counts = await fuzz('torch', 150);
    expect(counts['clean']).toBeGreaterThan(50);
  });

  it('legacy torch files (real torch.save output): 120 mutations, each read correctly or refused cleanly', async () => {
    const counts = await fuzz('legacy', 120);
    expect(counts['clean']).toBeGreaterThan(40);
  });

  it('configs: 48 hostile YAML texts and --set overrides, no pollution, no stack trace', async () => {
    await fuzz('yaml', 48);
  });

  it('hostile pickles: one of each family, all refused cleanly', async () => {
    const counts = await fuzz('pickle', 23);
    expect(counts['ok'] ?? 0).toBe(0);
  });
});
