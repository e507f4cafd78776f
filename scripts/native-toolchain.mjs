// What the native builds share: finding nvcc and the CUDA headers, the CUDA device's source list, a
// small parallel, incremental compiler driver (an object is rebuilt when its command changed or its
// source or a header its .d file names is newer), archiving and linking when stale, and a lock for
// builds that share a folder. Used by build-native.mjs (nvcc, `npm ci`) and by the emulated builds
// (g++: build-cuda-emu.mjs, build-native-emu.mjs).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The machine-code targets of the fat binary; PTX of the last one is embedded too. */
export const DEFAULT_CUDA_ARCHS = ['80', '86', '89', '90'];

/** The toolkit folder (holding include/cuda_runtime.h) an nvcc belongs to, or undefined (e.g. a wrapper script elsewhere). */
function toolkitOf(nvcc) {
  const home = path.dirname(path.dirname(fs.realpathSync(nvcc)));
  return fs.existsSync(path.join(home, 'include', 'cuda_runtime.h')) ? home : undefined;
}

/**
 * nvcc from DITTY_NVCC, CUDA_HOME/CUDA_PATH, PATH or /usr/local/cuda*, as { nvcc, home } with home
 * its toolkit folder, or undefined. An nvcc outside a toolkit (a wrapper script on PATH) is skipped
 * for the next candidate.
 */
export function findNvcc() {
  const candidates = [];
  if (process.env.DITTY_NVCC) candidates.push(process.env.DITTY_NVCC);
  for (const v of ['CUDA_HOME', 'CUDA_PATH']) if (process.env[v]) candidates.push(path.join(process.env[v], 'bin', 'nvcc'));
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, 'nvcc'));
  let local = [];
  try {
    local = fs.readdirSync('/usr/local').filter((d) => /^cuda(-[\d.]+)?$/.test(d)).sort().reverse();
  } catch {
    // no /usr/local
  }
  for (const d of local) candidates.push(path.join('/usr/local', d, 'bin', 'nvcc'));
  const found = candidates.filter((c) => fs.existsSync(c));
  for (const c of found) {
    const home = toolkitOf(c);
    if (home) return { nvcc: path.join(home, 'bin', 'nvcc'), home };
  }
  return undefined;
}

/** DITTY_CUDA_ARCHS ("90" or "80,90") or the default four. */
export function cudaArchs() {
  const v = process.env.DITTY_CUDA_ARCHS;
  if (!v) return DEFAULT_CUDA_ARCHS;
  const archs = v.split(',').map((s) => s.trim().replace(/^sm_/, '')).filter(Boolean);
  const bad = archs.filter((a) => !/^\d{2,3}a?$/.test(a));
  if (archs.length === 0 || bad.length) throw new Error(`DITTY_CUDA_ARCHS=${v}: expected compute capabilities such as 80,86,89,90`);
  return archs;
}

export function gencodeFlags(archs) {
  const flags = archs.map((a) => `-gencode=arch=compute_${a},code=sm_${a}`);
  const last = archs[archs.length - 1];
  flags.push(`-gencode=arch=compute_${last},code=compute_${last}`);
  return flags;
}

/** The CUDA toolkit's include directory (cuda_runtime_api.h, cuda_bf16.h, vector_types.h), or undefined. */
export function findCudaInclude() {
  const candidates = [];
  for (const v of ['CUDA_HOME', 'CUDA_PATH']) if (process.env[v]) candidates.push(path.join(process.env[v], 'include'));
  const nvcc = findNvcc();
  if (nvcc) candidates.push(path.join(nvcc.home, 'include'));
  candidates.push('/usr/local/cuda/include');
  return candidates.find((dir) => ['cuda_runtime_api.h', 'cuda_bf16.h', 'vector_types.h']
    .every((h) => fs.existsSync(path.join(dir, h))));
}

/** The C++ compiler ($CXX or g++) as { cxx } or { cxx, error }. */
export function findCompiler() {
  const cxx = process.env.CXX || 'g++';
  const r = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? { cxx } : { cxx, error: `no C++ compiler (${cxx} --version failed)` };
}

export function files(dir, pattern) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs).filter((f) => pattern.test(f)).sort().map((f) => `${dir}/${f}`);
}

/**
 * The CUDA device's sources, relative to the package root: the kernels, the dispatch layer the
 * bindings call (native/cuda/bind), cuBLASLt, the allocator and the device. Never the emulator,
 * the stand-in cuBLASLt or the kernel tests.
 */
export function cudaSources() {
  return [
    ...files('native/cuda/kernels', /\.cu$/),
    ...files('native/cuda/bind', /\.(cu|cpp)$/),
    ...['native/cuda/cublaslt.cpp', 'native/cuda/allocator.cpp', 'native/cuda/device.cpp'].filter((f) => fs.existsSync(path.join(root, f))),
  ];
}

/** Where `npm ci` compiles the CUDA device with nvcc (build-native.mjs). */
export const CUDA_OBJ_DIR = path.join(root, 'build', 'cuda', 'obj');

/** nvcc's -Xptxas -v report of a .cu object's kernels (registers, stack, spills), kept beside it. */
export function ptxasReportFor(obj) {
  return `${obj.slice(0, -2)}.ptxas.txt`;
}

/** The lines of a ptxas -v report, which a build keeps in the report instead of printing. */
export const PTXAS_INFO = /^ptxas info\s*:|^\s+\d+ bytes stack frame/;

/** The object file a source compiles to under objDir (flat, path separators folded). */
export function objectFor(objDir, src) {
  return path.join(objDir, `${src.replace(/^native\//, '').replace(/[/\\]/g, '__')}.o`);
}

/**
 * Whether `obj` is newer than `src` and every header its .d file names (the command it was built with
 * is its .cmd file's business: see upToDate).
 */
export function objectIsCurrent(obj, src) {
  if (!fs.existsSync(obj)) return false;
  const t = fs.statSync(obj).mtimeMs;
  const dep = `${obj.slice(0, -2)}.d`;
  if (!fs.existsSync(dep)) return false;
  const deps = [path.join(root, src)];
  const text = fs.readFileSync(dep, 'utf8').replace(/\\\n/g, ' ');
  const colon = text.indexOf(': ');
  if (colon >= 0) deps.push(...text.slice(colon + 2).split(/\s+/).filter(Boolean).map((p) => path.resolve(root, p)));
  return deps.every((d) => fs.existsSync(d) && fs.statSync(d).mtimeMs <= t);
}

/** The command `obj` was last built with (its .cmd file), or undefined. */
export function objectCommand(obj) {
  try {
    return JSON.parse(fs.readFileSync(`${obj.slice(0, -2)}.cmd`, 'utf8'));
  } catch {
    return undefined;
  }
}

function upToDate({ obj, src, args, outputFile }) {
  return JSON.stringify(objectCommand(obj)) === JSON.stringify(args) && objectIsCurrent(obj, src) && (!outputFile || fs.existsSync(outputFile));
}

/**
 * Compiles every job `{ src, obj, args }` (args: the full command, first element the program)
 * `jobs` at a time, skipping objects that are up to date (same command, newer than the source and
 * every header its .d file names, and its `outputFile` kept). Resolves to { built, failures, seconds }:
 * failures are { src, obj, output } of the compilers that exited non-zero. A job with `outputFile`
 * keeps the compiler's whole output there, and echoes only the lines that `quiet` does not match.
 */
export async function compileAll(list, jobs = Math.max(1, os.availableParallelism()), log = () => {}) {
  const started = performance.now();
  const todo = list.filter((j) => !upToDate(j));
  const failures = [];
  let next = 0;
  async function worker() {
    while (next < todo.length) {
      const job = todo[next++];
      fs.mkdirSync(path.dirname(job.obj), { recursive: true });
      const t = performance.now();
      const output = await new Promise((resolve) => {
        const child = spawn(job.args[0], job.args.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        child.stdout.on('data', (d) => { text += d; });
        child.stderr.on('data', (d) => { text += d; });
        child.on('error', (e) => resolve({ code: -1, text: `${text}${e.message}` }));
        child.on('close', (code) => resolve({ code, text }));
      });
      const echo = job.quiet ? output.text.split('\n').filter((l) => !job.quiet.test(l)).join('\n') : output.text;
      if (echo.trim()) process.stderr.write(echo.endsWith('\n') ? echo : `${echo}\n`);
      if (job.outputFile) fs.writeFileSync(job.outputFile, output.text);
      if (output.code !== 0) {
        fs.rmSync(job.obj, { force: true });
        failures.push({ src: job.src, obj: job.obj, output: output.text });
      } else {
        fs.writeFileSync(`${job.obj.slice(0, -2)}.cmd`, JSON.stringify(job.args));
        log(`${job.src} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(jobs, Math.max(1, todo.length)) }, worker));
  return { built: todo.length, failures, seconds: (performance.now() - started) / 1000 };
}

function stale(out, inputs, cmd) {
  if (!fs.existsSync(out)) return true;
  try {
    if (fs.readFileSync(`${out}.cmd`, 'utf8') !== cmd) return true;
  } catch {
    return true;
  }
  const t = fs.statSync(out).mtimeMs;
  return inputs.some((i) => !fs.existsSync(i) || fs.statSync(i).mtimeMs > t);
}

/**
 * Runs `args` (the program first) to make `out` from `inputs` unless `out` is newer than every input
 * and was made by the same command; a failure removes `out`. Resolves to undefined or the failure's output.
 */
export function makeIfStale(out, inputs, args) {
  const cmd = JSON.stringify(args);
  if (!stale(out, inputs, cmd)) return undefined;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.rmSync(out, { force: true });
  const r = spawnSync(args[0], args.slice(1), { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(out, { force: true });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() || `${path.basename(args[0])} exited ${r.status}`;
  }
  fs.writeFileSync(`${out}.cmd`, cmd);
  return undefined;
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * Runs `fn` holding the lock folder `dir` (a folder holding the owner's pid), so that builds sharing
 * objects (the test files start them in parallel workers) wait for each other instead of writing
 * the same files at once. A lock whose process is gone is taken over.
 */
export async function withBuildLock(dir, fn) {
  const owner = path.join(dir, 'pid');
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(owner, String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let pid = NaN;
      try { pid = Number(fs.readFileSync(owner, 'utf8')); } catch { /* being written or removed */ }
      // no pid after 10 s: its owner died between creating the folder and writing the pid
      let age = 0;
      try { age = Date.now() - fs.statSync(dir).mtimeMs; } catch { continue; }
      const stale = Number.isInteger(pid) && pid > 0 ? !alive(pid) : age > 10_000;
      if (stale) fs.rmSync(dir, { recursive: true, force: true });
      else await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The first error line of a compiler's output (for one-line reasons). */
export function firstError(output) {
  return output.split('\n').find((l) => /error/i.test(l))?.trim() ?? output.split('\n').find((l) => l.trim())?.trim() ?? '';
}
