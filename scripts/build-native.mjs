// Builds the native engine during `npm ci`. A machine that cannot build it (no compiler, no Node
// headers) still gets a working ditty on the tfjs engine: the reason is written where `ditty env`
// and the engine loader read it, and the install succeeds. When nvcc is found, the CUDA device is
// compiled first (native/cuda, into build/cuda/libditty_cuda.a) and linked in with static cudart;
// when it is not, or that part fails, the addon is built without it and build/cuda-unavailable.txt
// says why. DITTY_SKIP_CUDA=1 skips it; DITTY_CUDA_ARCHS=90 narrows the fat binary (development).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileAll, CUDA_OBJ_DIR, cudaArchs, cudaSources, findNvcc, firstError, gencodeFlags, objectFor, PTXAS_INFO, ptxasReportFor, root } from './native-toolchain.mjs';

const reasonFile = path.join(root, 'build', 'native-unavailable.txt');
const cudaDir = path.join(root, 'build', 'cuda');
const cudaReasonFile = path.join(root, 'build', 'cuda-unavailable.txt');
const linkFile = path.join(cudaDir, 'link.json');

function unavailable(reason) {
  fs.mkdirSync(path.dirname(reasonFile), { recursive: true });
  fs.writeFileSync(reasonFile, `${reason}\n`);
  process.stderr.write(`ditty: the native engine was not built (${reason}); ditty will run on the tfjs engine (backend wasm)\n`);
  process.exit(0);
}

function noCuda(reason) {
  fs.rmSync(linkFile, { force: true });
  fs.mkdirSync(path.dirname(cudaReasonFile), { recursive: true });
  fs.writeFileSync(cudaReasonFile, `${reason}\n`);
  process.stderr.write(`ditty: the CUDA device was not built (${reason}); the native engine runs on the CPU\n`);
}

/** Compiles native/cuda with nvcc into build/cuda/libditty_cuda.a and writes link.json for binding.gyp. */
async function buildCuda() {
  if (process.env.DITTY_SKIP_CUDA === '1') return noCuda('DITTY_SKIP_CUDA=1 was set at install time');
  const found = findNvcc();
  if (!found) return noCuda('nvcc was not found (PATH, CUDA_HOME, /usr/local/cuda*) when ditty was installed; install the CUDA toolkit and run `npm run build:native`');
  const lib64 = ['lib64', 'targets/x86_64-linux/lib', 'lib'].map((d) => path.join(found.home, d)).find((d) => fs.existsSync(path.join(d, 'libcudart_static.a')));
  if (!lib64) return noCuda(`libcudart_static.a was not found under ${found.home}`);
  let archs;
  try {
    archs = cudaArchs();
  } catch (err) {
    return noCuda(err.message);
  }
  // .cu files are compiled for every arch; host-only .cpp files by nvcc's host compiler against the real runtime.
  // ptxas -v reports each kernel's registers and spills: scripts/check-ptxas.mjs reads the report it keeps.
  const common = ['-std=c++20', '-O3', '-Xcompiler=-fPIC,-Wall,-Wextra', '-DDITTY_WITH_CUDA', '-Inative/include', '-Inative/cuda/include', '-Inative'];
  const cu = ['-x', 'cu', ...gencodeFlags(archs), '-Wno-deprecated-gpu-targets', '-Xcompiler=-fno-strict-aliasing', '-Xptxas=-v'];
  const sources = cudaSources();
  const jobs = sources.map((src) => {
    const obj = objectFor(CUDA_OBJ_DIR, src);
    const device = src.endsWith('.cu');
    const args = [found.nvcc, ...(device ? cu : ['-DDITTY_CUDA_NATIVE']), ...common, '-MD', '-MF', `${obj.slice(0, -2)}.d`, '-c', src, '-o', obj];
    return device ? { src, obj, args, outputFile: ptxasReportFor(obj), quiet: PTXAS_INFO } : { src, obj, args };
  });
  process.stderr.write(`ditty: compiling the CUDA device (${sources.length} files, sm_${archs.join(', sm_')}) with ${found.nvcc}\n`);
  const r = await compileAll(jobs, Math.max(1, os.availableParallelism()), (m) => process.stderr.write(`  nvcc ${m}\n`));
  if (r.failures.length) {
    return noCuda(`nvcc failed on ${r.failures.map((f) => f.src).join(', ')}: ${firstError(r.failures[0].output)}`);
  }
  const library = path.join(cudaDir, 'libditty_cuda.a');
  if (r.built === 0 && fs.existsSync(library) && fs.existsSync(linkFile)) return;
  // make does not see a static library as an input of the addon: a new one must relink it
  for (const addon of ['Release/ditty_native.node', 'Release/obj.target/ditty_native.node']) fs.rmSync(path.join(root, 'build', addon), { force: true });
  fs.rmSync(library, { force: true });
  const ar = spawnSync('ar', ['rcs', library, ...jobs.map((j) => j.obj)], { encoding: 'utf8' });
  if (ar.status !== 0) return noCuda(`ar failed: ${(ar.stderr ?? '').trim() || `exit ${ar.status}`}`);
  fs.rmSync(cudaReasonFile, { force: true });
  fs.writeFileSync(linkFile, `${JSON.stringify({ library, lib64, nvcc: found.nvcc, archs, seconds: r.seconds }, null, 2)}\n`);
  process.stderr.write(`ditty: CUDA device compiled in ${r.seconds.toFixed(1)} s\n`);
}

if (process.env.DITTY_SKIP_NATIVE === '1') unavailable('DITTY_SKIP_NATIVE=1 was set at install time');
const gyp = process.env.npm_config_node_gyp
  ?? path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
if (!fs.existsSync(gyp)) unavailable(`node-gyp not found (looked for ${gyp})`);
fs.rmSync(reasonFile, { force: true });
const jobs = String(Math.max(1, Math.min(4, os.availableParallelism())));
// Node's own headers when the system has them (no download: the install may be offline)
const nodedir = process.env.npm_config_nodedir
  ?? [path.join(path.dirname(process.execPath), '..'), '/usr'].find((d) => fs.existsSync(path.join(d, 'include', 'node', 'common.gypi')));
const gypRun = (...args) => spawnSync(process.execPath, [gyp, ...args, ...(nodedir ? [`--nodedir=${nodedir}`] : [])],
  { cwd: root, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });

// configure + build, not rebuild (which would remove build/ with the CUDA objects): both parts are incremental
await buildCuda();
let result = gypRun('configure');
if (result.status === 0) result = gypRun('build', '--jobs', jobs);
if (result.status !== 0 && fs.existsSync(linkFile)) {
  process.stderr.write(result.stderr ?? '');
  noCuda(`the addon failed to build with the CUDA device: ${firstError(result.stderr ?? '') || `exit ${result.status}`}`);
  result = gypRun('configure');
  if (result.status === 0) result = gypRun('build', '--jobs', jobs);
}
if (result.status !== 0) {
  const lines = (result.stderr ?? '').split('\n').filter((l) => /error/i.test(l)).slice(0, 3).join(' | ');
  process.stderr.write(result.stderr ?? '');
  unavailable(`node-gyp build failed: ${lines || `exit ${result.status}`}`);
}
