// Builds the emulated CUDA code (native/cuda/README.md): every CUDA source (cudaSources: kernels, the
// dispatch layer, cuBLASLt, allocator, device) and the emulator (native/cuda/emu) compiled by g++,
// once plainly into build/emu/obj and once with ASan/UBSan into build/emu-asan/obj; the CPU twins
// (native/cpu) once without sanitizers into build/emu/obj-cpu; the test drivers plainly (with the
// sanitizers too where they define kernels). Each native/cuda/test/test_*.cpp links
// with them into build/cuda-emu/<name> (and build/cuda-emu-asan/<name>); native/cuda/standin/*.cpp
// becomes build/emu/libcublaslt-standin.so (DITTY_CUBLASLT for the tests). build-native-emu.mjs links
// the same plain objects into the emulated addon, so a source is compiled once for both.
//
//   node scripts/build-cuda-emu.mjs [--asan | --both] [--run] [--json] [--probe] [--jobs N] [filter...]
//
// Objects are cached (rebuilt when a source, a header it includes, or the command changes) and compiled
// in parallel, under a lock (build/emu/.lock) that concurrent builds wait on. --probe prints
// {"ok", "reason"?} for the prerequisites; --json prints the build's result as JSON on stdout (the log
// goes to stderr); --run runs the programs (filters select them by name).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileAll, cudaSources, files, findCompiler, findCudaInclude, makeIfStale, objectFor, root, withBuildLock } from './native-toolchain.mjs';

// -O1 -g1: line tables, enough for sanitizer reports and backtraces, and much cheaper to compile than
// -O3 -g (the emulator's speed is the fibers', not the code's). -fPIC: the addon links these objects too.
export const BASE_FLAGS = ['-std=c++20', '-O1', '-g1', '-Wall', '-Wextra', '-fno-strict-aliasing', '-pthread', '-fPIC'];
// Stack-clash probes make a frame larger than a fiber's stack fault on its guard instead of landing in
// the neighbouring stack.
export const EMU_FLAGS = [...BASE_FLAGS, '-fstack-clash-protection', '-DDITTY_WITH_CUDA'];
// -O0 (after the base -O1): the sanitized build runs quick sizes, and compiles in half the time
const SANITIZE = ['-O0', '-fsanitize=address,undefined', '-fno-omit-frame-pointer', '-fno-sanitize-recover=undefined'];

export const EMU_DIR = path.join(root, 'build', 'emu');
export const EMU_CUBLASLT = path.join(EMU_DIR, 'libcublaslt-standin.so');
const LOCK = path.join(EMU_DIR, '.lock');
const OBJ = { normal: path.join(EMU_DIR, 'obj'), asan: path.join(root, 'build', 'emu-asan', 'obj') };
const PROGRAMS = { normal: path.join(root, 'build', 'cuda-emu'), asan: path.join(root, 'build', 'cuda-emu-asan') };

export function probe() {
  const cc = findCompiler();
  if (cc.error) return { ok: false, reason: cc.error };
  const inc = findCudaInclude();
  if (!inc) return { ok: false, reason: 'no CUDA toolkit headers (cuda_runtime_api.h, cuda_bf16.h): set CUDA_HOME' };
  return { ok: true, cxx: cc.cxx, cudaInclude: inc };
}

export function sources() {
  return {
    emu: files('native/cuda/emu', /\.cpp$/),
    cuda: cudaSources(),
    cpu: files('native/cpu', /\.cpp$/),
    tests: files('native/cuda/test', /^test_.*\.cpp$/),
    standin: files('native/cuda/standin', /\.cpp$/),
  };
}

/** The g++ job that compiles `src` into objDir with `flags` (the emulator's include path added). */
export function job({ cxx, cudaInclude }, src, objDir, flags) {
  const obj = objectFor(objDir, src);
  const lang = src.endsWith('.cu') ? ['-x', 'c++'] : [];
  const includes = ['-Inative', '-Inative/include', '-Inative/cuda/include', `-I${cudaInclude}`];
  return { src, obj, args: [cxx, ...lang, ...flags, ...includes, '-MMD', '-MF', `${obj.slice(0, -2)}.d`, '-c', src, '-o', obj] };
}

/**
 * The compile jobs of the emulated build, by part: `cpu` (the CPU twins, no sanitizers), `standin`,
 * and per variant `cuda` (cudaSources), `emu` and `tests`. `extra` jobs (the addon's bindings) join
 * the same queue.
 */
function plan(tools, variants, withTests) {
  const src = sources();
  if (!withTests) src.tests = [];
  const parts = {
    // -O3, as npm ci builds them; below it GCC 12's AVX-512 headers warn falsely (-Wuninitialized on
    // _mm512_undefined_ps, GCC PR 105593)
    cpu: src.cpu.map((f) => job(tools, f, path.join(EMU_DIR, 'obj-cpu'), [...BASE_FLAGS, '-O3', '-g0'])),
    standin: src.standin.map((f) => job(tools, f, path.join(EMU_DIR, 'obj-standin'), [...BASE_FLAGS, '-O2', '-g0'])),
    variants: {},
  };
  for (const v of variants) {
    const flags = v === 'asan' ? [...EMU_FLAGS, ...SANITIZE] : EMU_FLAGS;
    // The sanitizers watch the code under test: the kernels, the dispatch layer, the emulator, and the
    // kernels a test defines itself (the emulator's self-tests). A test driver without kernels only
    // launches and compares, so the sanitized programs link its plain object (a third of that build).
    const testJob = (f) => (v === 'asan' && !definesKernels(f) ? job(tools, f, OBJ.normal, EMU_FLAGS) : job(tools, f, OBJ[v], flags));
    parts.variants[v] = { cuda: src.cuda.map((f) => job(tools, f, OBJ[v], flags)), emu: src.emu.map((f) => job(tools, f, OBJ[v], flags)), tests: src.tests.map(testJob) };
  }
  return parts;
}

const definesKernels = (src) => /\b__global__\b/.test(fs.readFileSync(path.join(root, src), 'utf8'));

const objs = (jobs) => jobs.map((j) => j.obj);

/**
 * Builds the requested variants ('normal', 'asan') of the emulated objects and (with `tests`) the
 * kernel test programs, plus the compile jobs `extra(tools)` makes in the same queue, then
 * `then(result, parts)` under the same lock (the addon's link); resolves to a JSON-able summary.
 */
export async function build({
  variants = ['normal'], tests = true, jobs = os.availableParallelism(), log = (s) => process.stderr.write(`${s}\n`), extra = () => [], then,
} = {}) {
  const t0 = Date.now();
  const p = probe();
  if (!p.ok) return { ok: false, skipped: p.reason, variants: {}, errors: [] };
  return await withBuildLock(LOCK, async () => {
    const parts = plan(p, variants, tests);
    const extraJobs = extra(p);
    // a plain test object serves both variants: compiled once
    const all = [...new Map([...parts.cpu, ...parts.standin, ...Object.values(parts.variants).flatMap((pv) => [...pv.cuda, ...pv.emu, ...pv.tests]), ...extraJobs]
      .map((j) => [j.obj, j])).values()];
    const compiled = await compileAll(all, jobs, (m) => log(`  g++ ${m}`));
    const errors = compiled.failures.map((f) => ({ file: f.src, message: f.output.trim() }));
    const failed = new Set(compiled.failures.map((f) => f.obj));
    const ok = (list) => list.every((j) => !failed.has(j.obj));
    const make = (out, inputs, args) => {
      const problem = makeIfStale(out, inputs, args);
      if (problem) errors.push({ file: path.relative(root, out), message: problem });
      return problem ? undefined : out;
    };

    const cpuLib = ok(parts.cpu) ? make(path.join(EMU_DIR, 'libditty-cpu.a'), objs(parts.cpu), ['ar', 'rcs', path.join(EMU_DIR, 'libditty-cpu.a'), ...objs(parts.cpu)]) : undefined;
    const standin = parts.standin.length && ok(parts.standin)
      ? make(EMU_CUBLASLT, objs(parts.standin), [p.cxx, '-shared', '-fPIC', '-pthread', ...objs(parts.standin), '-o', EMU_CUBLASLT])
      : undefined;
    const result = { ok: true, seconds: 0, cudaInclude: p.cudaInclude, standin, compiled: compiled.built, variants: {}, errors };
    for (const v of variants) {
      const pv = parts.variants[v];
      // an archive: a test links only the members it needs, so one broken source fails only its tests
      const cudaJobs = pv.cuda.filter((j) => !failed.has(j.obj));
      const lib = path.join(OBJ[v], 'libditty-cuda.a');
      const cudaLib = cudaJobs.length ? make(lib, objs(cudaJobs), ['ar', 'rcs', lib, ...objs(cudaJobs)]) : undefined;
      const linkFlags = v === 'asan' ? [...BASE_FLAGS, ...SANITIZE] : BASE_FLAGS;
      const programs = [];
      if (ok(pv.emu) && cpuLib) {
        for (const t of pv.tests) {
          if (failed.has(t.obj)) continue;
          const name = path.basename(t.src, '.cpp');
          const exe = path.join(PROGRAMS[v], name);
          const inputs = [t.obj, ...(cudaLib ? [cudaLib] : []), ...objs(pv.emu), cpuLib];
          if (make(exe, inputs, [p.cxx, ...linkFlags, ...inputs, '-o', exe, '-ldl'])) programs.push({ name, path: exe });
        }
      }
      result.variants[v] = { dir: PROGRAMS[v], programs };
    }
    if (then) await then(result, { ...parts, extra: extraJobs, cxx: p.cxx });
    result.seconds = Math.round((Date.now() - t0) / 100) / 10;
    result.ok = errors.length === 0;
    return result;
  });
}

/** The environment a test program of `variant` runs with. */
export function testEnv(variant, standin, base = process.env) {
  const env = { ...base };
  if (standin) env.DITTY_CUBLASLT = standin;
  if (variant === 'asan') {
    env.DITTY_EMU_QUICK ??= '1';
    // fibers abandoned by a reported error would look like leaks
    env.ASAN_OPTIONS = `detect_leaks=0:abort_on_error=0${base.ASAN_OPTIONS ? `:${base.ASAN_OPTIONS}` : ''}`;
    env.UBSAN_OPTIONS = `print_stacktrace=1:halt_on_error=1${base.UBSAN_OPTIONS ? `:${base.UBSAN_OPTIONS}` : ''}`;
  }
  return env;
}

async function main(argv) {
  const opts = { variants: ['normal'], run: false, json: false, jobs: os.availableParallelism(), filters: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--asan') opts.variants = ['asan'];
    else if (a === '--both') opts.variants = ['normal', 'asan'];
    else if (a === '--run') opts.run = true;
    else if (a === '--json') opts.json = true;
    else if (a === '--jobs') opts.jobs = Math.max(1, Number(argv[++i]) || 1);
    else if (a === '--probe') { process.stdout.write(`${JSON.stringify(probe())}\n`); return 0; }
    else if (a.startsWith('--')) { process.stderr.write(`unknown option ${a}\n`); return 2; }
    else opts.filters.push(a);
  }
  const result = await build(opts);
  if (result.skipped) {
    process.stderr.write(`cuda-emu: skipped: ${result.skipped}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  for (const e of result.errors) process.stderr.write(`cuda-emu: FAILED ${e.file}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  let status = result.ok ? 0 : 1;
  if (opts.run) {
    for (const [variant, { programs }] of Object.entries(result.variants)) {
      for (const prog of programs) {
        if (opts.filters.length && !opts.filters.some((f) => prog.name.includes(f))) continue;
        process.stderr.write(`== ${prog.name} (${variant})\n`);
        const r = spawnSync(prog.path, [], { stdio: 'inherit', env: testEnv(variant, result.standin) });
        if (r.status !== 0) status = 1;
      }
    }
  }
  return status;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => { process.stderr.write(`${e.stack ?? e}\n`); process.exit(1); });
}
