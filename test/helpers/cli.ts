import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from './shared.js';

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run the built `ditty` binary (dist/ is built by `npm test` before vitest runs). */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/ditty.js'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
