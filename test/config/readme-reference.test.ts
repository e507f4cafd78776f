import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configReferenceMarkdown } from '../../src/config/index.js';
import { REPO_ROOT } from '../helpers/shared.js';

describe('README', () => {
  it('holds the current config reference (regenerate with scripts/update-readme-reference)', () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const m = /<!-- config-reference:start -->\n([\s\S]*)\n<!-- config-reference:end -->/.exec(readme);
    expect(m, 'README has the config-reference markers').not.toBeNull();
    expect(m![1]).toBe(configReferenceMarkdown(3).trimEnd());
  });

  it('names the two set-up commands that .ci/run runs', () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const ci = fs.readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8');
    expect(readme).toContain('npm ci && npm test');
    expect(ci).toContain('npm ci && npm test');
    expect(readme).toContain('npm ci && npx ditty train configs/tiny.yaml');
  });
});
