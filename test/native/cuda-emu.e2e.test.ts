/**
 * The CUDA kernels on the CPU (native/cuda/README.md): scripts/build-cuda-emu.mjs compiles every .cu
 * kernel and every native/cuda/test/test_*.cpp with g++ against the emulator, once plainly and once with
 * ASan/UBSan; each program must pass every case it lists, in both builds (the sanitizer build with
 * DITTY_EMU_QUICK=1, smaller sizes).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { probe, testEnv, type BuildResult, type Variant } from '../../scripts/build-cuda-emu.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = path.join(root, 'scripts', 'build-cuda-emu.mjs');
const VARIANTS: readonly Variant[] = ['normal', 'asan'];

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Run { status: number | null; signal: string | null; stdout: string; stderr: string }

// Asynchronous, so that the vitest worker stays responsive during a long build.
function exec(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', (e) => resolve({ status: null, signal: null, stdout, stderr: `${stderr}${String(e)}` }));
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

// Runs thunks with at most `limit` in flight; each promise settles with its thunk's result.
function limited<T>(limit: number): (thunk: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return (thunk) => new Promise<T>((resolve) => {
    const start = (): void => {
      active++;
      void thunk().then((v) => {
        active--;
        queue.shift()?.();
        resolve(v);
      });
    };
    if (active < limit) start();
    else queue.push(start);
  });
}

interface ProgramRun { cases: string[]; list: Run; run: Run }

const testNames = fs.readdirSync(path.join(root, 'native', 'cuda', 'test'))
  .filter((f) => /^test_.*\.cpp$/.test(f)).sort().map((f) => f.replace(/\.cpp$/, ''));
const prereq = probe();
const suite = prereq.ok ? describe : describe.skip;

suite(`CUDA kernels in the CPU emulator${prereq.ok ? '' : ` (skipped: ${prereq.reason})`}`, () => {
  let result: BuildResult | undefined;
  const runs = new Map<string, Promise<ProgramRun>>();

  beforeAll(async () => {
    const r = await exec(process.execPath, [script, '--both', '--json']);
    if (!r.stdout.trim()) throw new Error(`build-cuda-emu.mjs failed:\n${r.stderr}`);
    const built = JSON.parse(r.stdout) as BuildResult;
    result = built;
    console.log(`build-cuda-emu.mjs: ${built.compiled ?? 0} objects compiled in ${built.seconds ?? 0} s`);
    // every program starts now, a few at a time; each test below waits for its own
    const slot = limited<ProgramRun>(Math.max(1, os.availableParallelism()));
    for (const variant of VARIANTS) {
      for (const prog of built.variants[variant]?.programs ?? []) {
        const env = testEnv(variant, built.standin);
        runs.set(`${variant}/${prog.name}`, slot(async () => {
          const list = await exec(prog.path, ['--list'], env);
          const cases = list.stdout.split('\n').filter(Boolean);
          return { cases, list, run: await exec(prog.path, [], env) };
        }));
      }
    }
  }, 1_800_000);  // a first build on two busy cores takes minutes; later ones reuse the objects

  it('every kernel, host file and test program compiles and links with g++ and with the sanitizers', () => {
    expect(result?.skipped).toBeUndefined();
    expect(result?.errors.map((e) => `${e.file}:\n${e.message}`)).toEqual([]);
  });

  for (const variant of VARIANTS) {
    for (const name of testNames) {
      it(`${name} passes every case (${variant === 'asan' ? 'ASan/UBSan build, quick sizes' : 'emulator build'})`, async () => {
        const pending = runs.get(`${variant}/${name}`);
        expect(pending, `${name} was not built`).toBeDefined();
        if (!pending) return;
        const { cases, list, run } = await pending;
        expect(list.status, list.stderr).toBe(0);
        expect(cases.length).toBeGreaterThan(0);
        const out = `${run.stdout}${run.stderr}`;
        expect(run.status, `${out}${run.signal ? `\n(killed by ${run.signal})` : ''}`).toBe(0);
        for (const c of cases) expect(run.stdout, out).toMatch(new RegExp(`^ok ${escape(c)} `, 'm'));
        expect(run.stdout).toContain(`# ${cases.length} cases, 0 failed`);
      }, 900_000);
    }
  }
});
