/**
 * scripts/check-ptxas.mjs: no CUDA kernel spills registers on sm_90 (ptxas -v), which the emulator
 * cannot see. It reads the reports the `npm ci` build kept where they are current, and a report
 * read so must equal what compiling that file for sm_90 alone reports. Skipped, saying so, where nvcc
 * is not installed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPtxas, formatTable, parsePtxas } from '../../scripts/check-ptxas.mjs';
import { CUDA_OBJ_DIR, findNvcc, objectFor, objectIsCurrent, root } from '../../scripts/native-toolchain.mjs';

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

  it('keeps only the kernels of the arch asked for from a fat build\'s report', () => {
    const text = [
      "ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_80'",
      'ptxas info    : Function properties for _Z3fooPf',
      '    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads',
      'ptxas info    : Used 40 registers, used 0 barriers, 368 bytes cmem[0]',
      "ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_90'",
      'ptxas info    : Function properties for _Z3fooPf',
      '    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads',
      'ptxas info    : Used 168 registers, used 0 barriers, 368 bytes cmem[0]',
    ].join('\n');
    expect(parsePtxas(text, '90')).toEqual([{ kernel: '_Z3fooPf', registers: 168, stack: 8, spillStores: 4, spillLoads: 4 }]);
    expect(parsePtxas(text, '80')).toEqual([{ kernel: '_Z3fooPf', registers: 40, stack: 0, spillStores: 0, spillLoads: 0 }]);
    expect(parsePtxas(text)).toHaveLength(2);
  });

  it.skipIf(!nvcc)('finds no kernel that spills on sm_90', async () => {
    const result = await checkPtxas();
    process.stderr.write(`${formatTable(result)}\n`);
    expect(result.files.length).toBeGreaterThan(0);
    expect(result.files.filter((f) => !f.ok).map((f) => `${f.file}: ${f.error}`)).toEqual([]);
    expect(result.files.flatMap((f) => f.rows.filter((r) => r.spillStores > 0 || r.spillLoads > 0).map((r) => r.kernel))).toEqual([]);
    // where the npm ci build compiled the device for sm_90, every file whose object is still current is read from its report
    const link = path.join(root, 'build', 'cuda', 'link.json');
    if (fs.existsSync(link) && (JSON.parse(fs.readFileSync(link, 'utf8')) as { archs: string[] }).archs.includes('90')) {
      const current = result.files.filter((f) => objectIsCurrent(objectFor(CUDA_OBJ_DIR, f.file), f.file));
      expect(current.filter((f) => f.from !== 'build').map((f) => f.file)).toEqual([]);
    }
    // a report taken from the npm ci build says what compiling the file for sm_90 alone says
    const reused = result.files.filter((f) => f.from === 'build' && f.rows.length > 0).sort((a, b) => a.rows.length - b.rows.length)[0];
    if (!reused) {
      process.stderr.write('check-ptxas: no current report of the npm ci build (run `npm run build:native`); every file was compiled\n');
      return;
    }
    const fresh = await checkPtxas([reused.file], '90', { reuse: false });
    expect(fresh.files[0]!.from).toBe('compiled');
    expect(fresh.files[0]!.rows).toEqual(reused.rows);
  }, 1_200_000);
});
