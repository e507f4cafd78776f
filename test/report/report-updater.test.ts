import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReportUpdater } from '../../src/report/report-updater.js';
import { syntheticRun } from './synthetic-run.js';

describe('ReportUpdater', () => {
  it('rewrites report.html at most every interval unless forced', async () => {
    const dir = syntheticRun(5, 'updater');
    const file = path.join(dir, 'report.html');
    let t = 0;
    const u = new ReportUpdater(dir, () => undefined, 10, () => t);
    await u.update();
    expect(fs.existsSync(file)).toBe(true);
    fs.rmSync(file);
    t = 5;
    await u.update();
    expect(fs.existsSync(file)).toBe(false);
    await u.update(true);
    expect(fs.existsSync(file)).toBe(true);
    fs.rmSync(file);
    t = 16;
    await u.update();
    expect(fs.existsSync(file)).toBe(true);
  });

  it('a report that cannot be written is one warning, not an error', async () => {
    const dir = syntheticRun(3, 'broken');
    fs.writeFileSync(path.join(dir, 'samples.jsonl'), 'nope\n{}\n');
    const warnings: string[] = [];
    const u = new ReportUpdater(dir, (m) => warnings.push(m), 0);
    await u.update();
    await u.update();
    expect(warnings).toEqual([`warning: report.html not updated: ${path.join(dir, 'samples.jsonl')}:1: not JSON`]);
  });
});
