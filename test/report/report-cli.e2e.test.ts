import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { syntheticRun } from './synthetic-run.js';

describe('ditty report RUN', () => {
  it('regenerates report.html and prints its path; a folder without metrics.jsonl is one clear line', async () => {
    const dir = syntheticRun(5, 'cli');
    const r = await runCli(['report', dir]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(path.join(dir, 'report.html'));
    expect(fs.existsSync(path.join(dir, 'report.html'))).toBe(true);
    const empty = path.dirname(dir);
    const bad = await runCli(['report', empty]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe(`ditty: error: ${path.join(empty, 'metrics.jsonl')}: cannot be read (no metrics.jsonl: is this a ditty run folder?)\n`);
    const missing = await runCli(['report', path.join(empty, 'nope')]);
    expect(missing.stderr).toBe(`ditty: error: ${path.join(empty, 'nope')}: no such run folder\n`);
  });
});
