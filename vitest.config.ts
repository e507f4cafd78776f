import * as os from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Two projects, both run by `npm test` (`vitest run`); `--project unit` or `--project e2e` runs one.
//   unit: the code imported and run in the test process (fixtures, references, hostile inputs).
//   e2e:  *.e2e.test.ts, which run the built `ditty` (dist/, built by `npm test` first) or the native
//         builds (the emulated CUDA kernels and addon, nvcc) as child processes.
// Vitest's default on 2 cores is one worker; the end-to-end tests spend most of their time waiting on
// their children, so two at least keep both cores busy.
const E2E = 'test/**/*.e2e.test.ts';

// The file that compiles the emulated CUDA code (minutes on a fresh clone) starts first, so that the
// other files fill the cores around its build instead of leaving it alone at the end. Otherwise
// vitest's order: the slowest of the last run first, or on a fresh clone the largest files first.
const STARTS_FIRST = /test\/native\/cuda-emu\.e2e\.test\.ts$/;
class BuildsFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [...sorted.filter((f) => STARTS_FIRST.test(f.moduleId)), ...sorted.filter((f) => !STARTS_FIRST.test(f.moduleId))];
  }
}

export default defineConfig({
  test: {
    pool: 'forks',
    sequence: { sequencer: BuildsFirst },
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [E2E], testTimeout: 120_000, hookTimeout: 120_000 },
      },
      {
        extends: true,
        // a child process of a busy machine may take minutes; the builds set their own hook timeouts
        test: { name: 'e2e', include: [E2E], testTimeout: 300_000, hookTimeout: 300_000 },
      },
    ],
  },
});
