// Builds the whole addon with its CUDA device EMULATED on the CPU: the CPU engine and the bindings
// as `npm ci` builds them, plus every CUDA source (native/cuda/kernels, native/cuda/bind, the
// device, the allocator, cuBLASLt) compiled by g++ against the emulator (native/cuda/emu), and the
// stand-in cuBLASLt (native/cuda/standin) as a library beside it. `backend: cuda` then runs on this
// CPU, slowly (each CUDA thread is a fiber), which is what the tests need on machines without a GPU:
//
//   node scripts/build-native-emu.mjs            -> build/emu/ditty_native.node, build/emu/libcublaslt-standin.so
//   DITTY_NATIVE_ADDON=build/emu/ditty_native.node DITTY_CUBLASLT=build/emu/libcublaslt-standin.so ditty ...
//
// Objects are cached in build/emu/obj and rebuilt when a source or a header it includes changes.
// --json prints {"ok", "addon", "cublaslt", "reason"?} on stdout. Needs g++ and the CUDA toolkit's
// headers (not a GPU, not a driver).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { findCudaInclude } from './build-cuda-emu.mjs';
import { compileAll, cudaSources, firstError, objectFor, root } from './native-toolchain.mjs';

const out = path.join(root, 'build', 'emu');
export const EMU_ADDON = path.join(out, 'ditty_native.node');
export const EMU_CUBLASLT = path.join(out, 'libcublaslt-standin.so');

const files = (dir, re) => {
  const abs = path.join(root, dir);
  return fs.existsSync(abs) ? fs.readdirSync(abs).filter((f) => re.test(f)).sort().map((f) => `${dir}/${f}`) : [];
};

function nodeInclude() {
  return [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node']
    .find((d) => fs.existsSync(path.join(d, 'node_api.h')));
}

/** Whether this machine can build the emulated addon: { ok, cxx, cudaInclude, nodeInclude } or { ok: false, reason }. */
export function emuToolchain() {
  const cxx = process.env.CXX || 'g++';
  if (spawnSync(cxx, ['--version'], { encoding: 'utf8' }).status !== 0) return { ok: false, reason: `no C++ compiler (${cxx} --version failed)` };
  const cudaInclude = findCudaInclude();
  if (!cudaInclude) return { ok: false, reason: 'no CUDA toolkit headers (cuda_runtime_api.h, cuda_bf16.h): set CUDA_HOME' };
  const nodeInc = nodeInclude();
  if (!nodeInc) return { ok: false, reason: 'no Node headers (node_api.h) next to node or in /usr/include/node' };
  return { ok: true, cxx, cudaInclude, nodeInclude: nodeInc };
}

/** Builds the emulated addon; resolves to { ok, addon, cublaslt } or { ok: false, reason }. */
export async function buildNativeEmu(log = (m) => process.stderr.write(`${m}\n`)) {
  const tools = emuToolchain();
  if (!tools.ok) return tools;
  const { cxx, cudaInclude, nodeInclude: nodeInc } = tools;
  const napi = createRequire(import.meta.url)('node-addon-api').include_dir;
  const base = ['-std=c++20', '-O3', '-fPIC', '-pthread', '-Wall', '-Wextra', '-fexceptions', '-fno-strict-aliasing',
    '-DDITTY_WITH_CUDA', '-Inative/include', '-Inative/cuda/include', '-Inative', `-I${cudaInclude}`];
  const addonFlags = [`-I${napi}`, `-I${nodeInc}`, '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_CPP_EXCEPTIONS_ALL'];
  const groups = [
    { srcs: [...files('native/cpu', /\.cpp$/), ...files('native/binding', /\.cpp$/)], flags: addonFlags },
    { srcs: [...cudaSources(), ...files('native/cuda/emu', /\.cpp$/)], flags: [] },
  ];
  const objDir = path.join(out, 'obj');
  const jobs = groups.flatMap((g) => g.srcs.map((src) => {
    const obj = objectFor(objDir, src);
    const lang = src.endsWith('.cu') ? ['-x', 'c++'] : [];
    return { src, obj, args: [cxx, ...lang, ...base, ...g.flags, '-MMD', '-MF', `${obj.slice(0, -2)}.d`, '-c', src, '-o', obj] };
  }));
  const standin = files('native/cuda/standin', /\.cpp$/).map((src) => {
    const obj = objectFor(path.join(out, 'obj-standin'), src);
    return { src, obj, args: [cxx, '-std=c++20', '-O2', '-fPIC', '-pthread', '-Wall', '-Wextra', '-Inative/cuda/include', '-Inative', `-I${cudaInclude}`,
      '-MMD', '-MF', `${obj.slice(0, -2)}.d`, '-c', src, '-o', obj] };
  });
  const r = await compileAll([...jobs, ...standin], Math.max(1, os.availableParallelism()), (m) => log(`  g++ ${m}`));
  if (r.failures.length) return { ok: false, reason: `g++ failed on ${r.failures.map((f) => f.src).join(', ')}: ${firstError(r.failures[0].output)}` };
  const link = (target, objs, extra) => {
    const newest = Math.max(...objs.map((o) => fs.statSync(o).mtimeMs));
    if (fs.existsSync(target) && fs.statSync(target).mtimeMs >= newest) return undefined;
    const l = spawnSync(cxx, ['-shared', '-o', target, ...objs, '-pthread', ...extra], { encoding: 'utf8' });
    return l.status === 0 ? undefined : `linking ${path.basename(target)} failed: ${firstError(l.stderr ?? '')}`;
  };
  const failed = link(EMU_ADDON, jobs.map((j) => j.obj), ['-ldl']) ?? (standin.length ? link(EMU_CUBLASLT, standin.map((j) => j.obj), []) : undefined);
  if (failed) return { ok: false, reason: failed };
  log(`emulated addon: ${path.relative(root, EMU_ADDON)} (${r.built} files compiled in ${r.seconds.toFixed(1)} s)`);
  return { ok: true, addon: EMU_ADDON, cublaslt: standin.length ? EMU_CUBLASLT : undefined };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const json = process.argv.includes('--json');
  const result = await buildNativeEmu();
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (!result.ok) process.stderr.write(`ditty: the emulated addon was not built: ${result.reason}\n`);
  process.exit(result.ok ? 0 : 1);
}
