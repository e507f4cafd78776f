// Builds the emulated CUDA kernel tests (native/cuda/README.md): every native/cuda/test/test_*.cpp,
// linked with all native/cuda/kernels/*.cu (compiled by g++ as C++) and the host parts native/cuda/*.cpp
// (cuBLASLt wrapper, allocator...; one static archive), the emulator (native/cuda/emu) and the CPU twins
// (native/cpu, one static archive, built once without sanitizers), into
// build/cuda-emu/<name> and, with ASan/UBSan, build/cuda-emu-asan/<name>. native/cuda/standin/*.cpp
// becomes build/cuda-emu/libcublaslt-standin.so (DITTY_CUBLASLT for the tests).
//
//   node scripts/build-cuda-emu.mjs [--asan | --both] [--run] [--json] [--probe] [--jobs N] [filter...]
//
// Objects are cached (rebuilt when a source, a header it includes, or the command changes) and compiled
// in parallel. --probe prints {"ok", "reason"?} for the prerequisites; --json prints the build's result
// as JSON on stdout (the log goes to stderr); --run runs the programs (filters select them by name).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rel = (p) => path.relative(root, p);

// -g1: line tables, enough for sanitizer reports and backtraces, and much cheaper to compile than -g
const BASE_FLAGS = ['-std=c++20', '-O1', '-g1', '-Wall', '-Wextra', '-fno-strict-aliasing', '-pthread'];
// Stack-clash probes make a frame larger than a fiber's stack fault on its guard instead of landing in
// the neighbouring stack.
const EMU_FLAGS = [...BASE_FLAGS, '-fstack-clash-protection'];
const SANITIZE = ['-fsanitize=address,undefined', '-fno-omit-frame-pointer', '-fno-sanitize-recover=undefined'];

export function findCompiler() {
  const cxx = process.env.CXX || 'g++';
  const r = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return { cxx, error: `no C++ compiler (${cxx} --version failed)` };
  return { cxx };
}

/** The CUDA toolkit's include directory (cuda_runtime_api.h, cuda_bf16.h, vector_types.h), or undefined. */
export function findCudaInclude() {
  const candidates = [];
  for (const v of ['CUDA_HOME', 'CUDA_PATH']) if (process.env[v]) candidates.push(path.join(process.env[v], 'include'));
  const which = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) {
    try {
      candidates.push(path.join(path.dirname(path.dirname(fs.realpathSync(which.stdout.trim()))), 'include'));
    } catch { /* a dangling nvcc link: try the usual places */ }
  }
  candidates.push('/usr/local/cuda/include');
  try {
    const versions = fs.readdirSync('/usr/local').filter((d) => /^cuda-\d/.test(d))
      .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
    for (const d of versions) candidates.push(path.join('/usr/local', d, 'include'));
  } catch { /* no /usr/local */ }
  return candidates.find((dir) => ['cuda_runtime_api.h', 'cuda_bf16.h', 'vector_types.h']
    .every((h) => fs.existsSync(path.join(dir, h))));
}

export function probe() {
  const cc = findCompiler();
  if (cc.error) return { ok: false, reason: cc.error };
  const inc = findCudaInclude();
  if (!inc) return { ok: false, reason: 'no CUDA toolkit headers (cuda_runtime_api.h, cuda_bf16.h): set CUDA_HOME' };
  return { ok: true, cxx: cc.cxx, cudaInclude: inc };
}

const list = (dir, re) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f)) : []);

export function sources() {
  const cuda = path.join(root, 'native', 'cuda');
  return {
    emu: list(path.join(cuda, 'emu'), /\.cpp$/),
    kernels: [...list(path.join(cuda, 'kernels'), /\.cu$/), ...list(cuda, /\.cpp$/)],
    cpu: list(path.join(root, 'native', 'cpu'), /\.cpp$/),
    tests: list(path.join(cuda, 'test'), /^test_.*\.cpp$/),
    standin: list(path.join(cuda, 'standin'), /\.cpp$/),
  };
}

function mtime(p) {
  try { return fs.statSync(p).mtimeMs; } catch { return -1; }
}

// The prerequisites g++ -MMD wrote for an object.
function depsOf(depFile) {
  let text;
  try { text = fs.readFileSync(depFile, 'utf8'); } catch { return undefined; }
  const body = text.replace(/\\\n/g, ' ');
  const colon = body.indexOf(': ');
  if (colon < 0) return undefined;
  return body.slice(colon + 2).split('\n')[0].trim().split(/(?<!\\)\s+/).filter(Boolean).map((d) => d.replace(/\\ /g, ' '));
}

function upToDate(out, inputs, cmdFile, cmd) {
  const t = mtime(out);
  if (t < 0) return false;
  try { if (fs.readFileSync(cmdFile, 'utf8') !== cmd) return false; } catch { return false; }
  return inputs.every((i) => { const m = mtime(i); return m >= 0 && m <= t; });
}

function run(cmd, args, log) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('close', (code, signal) => {
      if (output.trim()) log(output.trimEnd());
      resolve({ ok: code === 0, output: output || (signal ? `killed by ${signal}` : '') });
    });
    child.on('error', (e) => resolve({ ok: false, output: String(e) }));
  });
}

// Runs thunks with at most `jobs` in flight.
async function parallel(tasks, jobs) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  return results;
}

class Builder {
  constructor({ cxx, cudaInclude, jobs, log }) {
    Object.assign(this, { cxx, cudaInclude, jobs, log });
    this.errors = [];
    this.compiled = 0;
  }

  includes() {
    return ['-DDITTY_CUDA_EMULATED=1', '-I', path.join(root, 'native'), '-I', path.join(root, 'native', 'include'), '-I', path.join(root, 'native', 'cuda', 'include'), '-I', this.cudaInclude];
  }

  // Compiles one source to objDir/<name>.o unless it is up to date; resolves to the object or undefined.
  async compile(src, objDir, flags) {
    const stem = rel(src).replace(/[/\\]/g, '_').replace(/\.(cpp|cu)$/, '');
    const obj = path.join(objDir, `${stem}.o`), dep = path.join(objDir, `${stem}.d`), cmdFile = path.join(objDir, `${stem}.cmd`);
    const lang = src.endsWith('.cu') ? ['-x', 'c++'] : [];
    const args = [...flags, ...this.includes(), '-MMD', '-MF', dep, '-c', ...lang, src, '-o', obj];
    const cmd = [this.cxx, ...args].join(' ');
    const deps = depsOf(dep);
    if (deps && upToDate(obj, [src, ...deps], cmdFile, cmd)) return obj;
    fs.mkdirSync(objDir, { recursive: true });
    const t0 = Date.now();
    const r = await run(this.cxx, args, this.log);
    this.log(`compiled ${rel(src)}${flags.includes(SANITIZE[0]) ? ' (asan)' : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (!r.ok) {
      fs.rmSync(obj, { force: true });
      this.errors.push({ file: rel(src), message: r.output.trim() });
      return undefined;
    }
    fs.writeFileSync(cmdFile, cmd);
    this.compiled++;
    return obj;
  }

  async archive(out, objs) {
    const cmdFile = `${out}.cmd`, cmd = objs.join(' ');
    if (upToDate(out, objs, cmdFile, cmd)) return out;
    fs.rmSync(out, { force: true });
    const r = await run('ar', ['rcs', out, ...objs], this.log);
    if (!r.ok) { this.errors.push({ file: rel(out), message: r.output.trim() }); return undefined; }
    fs.writeFileSync(cmdFile, cmd);
    return out;
  }

  async link(out, inputs, flags) {
    const args = [...flags, ...inputs, '-o', out, '-ldl'];
    const cmdFile = `${out}.cmd`, cmd = [this.cxx, ...args].join(' ');
    if (upToDate(out, inputs, cmdFile, cmd)) return out;
    this.log(`link ${rel(out)}`);
    const r = await run(this.cxx, args, this.log);
    if (!r.ok) { fs.rmSync(out, { force: true }); this.errors.push({ file: rel(out), message: r.output.trim() }); return undefined; }
    fs.writeFileSync(cmdFile, cmd);
    return out;
  }
}

/** Builds the requested variants ('normal', 'asan'); resolves to a JSON-able summary. */
export async function build({ variants = ['normal'], jobs = os.availableParallelism(), log = (s) => process.stderr.write(`${s}\n`) } = {}) {
  const t0 = Date.now();
  const p = probe();
  if (!p.ok) return { ok: false, skipped: p.reason, variants: {}, errors: [] };
  const b = new Builder({ cxx: p.cxx, cudaInclude: p.cudaInclude, jobs, log });
  const src = sources();
  const out = path.join(root, 'build', 'cuda-emu');
  const dirs = { normal: out, asan: path.join(root, 'build', 'cuda-emu-asan') };
  const flags = { normal: EMU_FLAGS, asan: [...EMU_FLAGS, ...SANITIZE] };

  // Every compile of every variant goes into one queue, so the cores stay busy.
  const tasks = [];
  const enqueue = (file, objDir, f) => { const i = tasks.length; tasks.push(() => b.compile(file, objDir, f)); return i; };
  // The CPU twins are the reference: compiled once, without sanitizers, for both variants.
  const cpuIdx = src.cpu.map((f) => enqueue(f, path.join(out, 'obj-cpu'), [...BASE_FLAGS, '-g0']));
  const standinIdx = src.standin.map((f) => enqueue(f, path.join(out, 'obj-standin'), [...BASE_FLAGS, '-fPIC']));
  const perVariant = {};
  for (const v of variants) {
    const objDir = path.join(dirs[v], 'obj');
    perVariant[v] = {
      emu: src.emu.map((f) => enqueue(f, objDir, flags[v])),
      kernels: src.kernels.map((f) => enqueue(f, objDir, flags[v])),
      tests: src.tests.map((f) => enqueue(f, objDir, flags[v])),
    };
  }
  const objs = await parallel(tasks, jobs);
  const pick = (idx) => idx.map((i) => objs[i]);

  const cpuObjs = pick(cpuIdx);
  const cpuLib = cpuObjs.every(Boolean) ? await b.archive(path.join(out, 'libditty-cpu.a'), cpuObjs) : undefined;
  let standin;
  if (src.standin.length) {
    const so = pick(standinIdx);
    if (so.every(Boolean)) standin = await b.link(path.join(out, 'libcublaslt-standin.so'), so, ['-shared', '-fPIC', '-pthread']);
  }

  const result = { ok: true, seconds: 0, cudaInclude: p.cudaInclude, standin, compiled: 0, variants: {}, errors: b.errors };
  for (const v of variants) {
    const pv = perVariant[v];
    const emu = pick(pv.emu), kernels = pick(pv.kernels).filter(Boolean);
    // an archive: a test links only the members it needs, so one broken kernel file fails only its tests
    const kernelLib = kernels.length ? await b.archive(path.join(dirs[v], 'obj', 'libditty-cuda.a'), kernels) : undefined;
    const linkFlags = v === 'asan' ? [...BASE_FLAGS, ...SANITIZE] : BASE_FLAGS;
    const programs = [];
    if (emu.every(Boolean) && cpuLib) {
      const links = src.tests.map((t, i) => async () => {
        const obj = objs[pv.tests[i]];
        if (!obj) return undefined;
        const name = path.basename(t, '.cpp');
        const exe = await b.link(path.join(dirs[v], name), [obj, ...(kernelLib ? [kernelLib] : []), ...emu, cpuLib], linkFlags);
        return exe ? { name, path: exe } : undefined;
      });
      for (const r of await parallel(links, jobs)) if (r) programs.push(r);
    }
    result.variants[v] = { dir: dirs[v], programs };
  }
  result.compiled = b.compiled;
  result.seconds = Math.round((Date.now() - t0) / 100) / 10;
  result.ok = b.errors.length === 0;
  return result;
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
