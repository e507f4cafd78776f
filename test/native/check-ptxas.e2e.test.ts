/**
 * scripts/check-ptxas.mjs: no CUDA kernel spills registers on sm_90 (ptxas -v), which the emulator
 * cannot see. Skipped, saying so, where nvcc is not installed.
 */
import { describe, expect, it } from 'vitest';
import { checkPtxas, formatTable, parsePtxas } from '../../scripts/check-ptxas.mjs';
import { findNvcc } from '../../scripts/native-toolchain.mjs';

const nvcc = findNvcc();
if (!nvcc) process.stderr.write('skipping the ptxas spill check: nvcc was not found (PATH, CUDA_HOME, /usr/local/cuda*)\n');

describe('check-ptxas', () => {
  it('reads registers, stack frames and spills from ptxas -v output', () => {
    const rows = parsePtxas([
      "ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_90'",
      'ptxas info    : Function properties for _Z3fooPf',
      '    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads',
      'ptxas info    : Used 255 registers, used 0 barriers, 368 bytes cmem[0]',
      "ptxas info    : Compiling entry function '_Z3barv' for 'sm_90'",
      '    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads',
      'ptxas info    : Used 12 registers',
    ].join('\n'));
    expect(rows).toEqual([
      { kernel: '_Z3fooPf', registers: 255, stack: 16, spillStores: 8, spillLoads: 4 },
      { kernel: '_Z3barv', registers: 12, stack: 0, spillStores: 0, spillLoads: 0 },
    ]);
  });

  it.skipIf(!nvcc)('finds no kernel that spills on sm_90', async () => {
    const result = await checkPtxas();
    process.stderr.write(`${formatTable(result)}\n`);
    expect(result.files.length).toBeGreaterThan(0);
    expect(result.files.filter((f) => !f.ok).map((f) => `${f.file}: ${f.error}`)).toEqual([]);
    expect(result.files.flatMap((f) => f.rows.filter((r) => r.spillStores > 0 || r.spillLoads > 0).map((r) => r.kernel))).toEqual([]);
  }, 1_200_000);
});
