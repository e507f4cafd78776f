import * as os from 'node:os';
import { defineConfig } from 'vitest/config';

// Two projects, both run by `npm test` (`vitest run`); `--project unit` or `--project e2e` runs one.
//   unit: the code imported and run in the test process (fixtures, references, hostile inputs).
//   e2e:  *.e2e.test.ts, which run the built `ditty` (dist/, built by `npm test` first) or the native
//         builds (the emulated CUDA kernels and addon, nvcc) as child processes.
// Vitest's default on 2 cores is one worker; the end-to-end tests spend most of their time waiting on
// their children, so two at least keep both cores busy.
const E2E = 'test/**/*.e2e.test.ts';

export default defineConfig({
  test: {
    pool: 'forks',
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
