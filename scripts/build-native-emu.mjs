// Builds the whole addon with its CUDA device EMULATED on the CPU: the CPU engine and the bindings
// as `npm ci` builds them, plus every CUDA source compiled by g++ against the emulator, and the
// stand-in cuBLASLt (native/cuda/standin) as a library beside it. `backend: cuda` then runs on this
// CPU, slowly (each CUDA thread is a fiber), which is what the tests need on machines without a GPU:
//
//   node scripts/build-native-emu.mjs            -> build/emu/ditty_native.node, build/emu/libcublaslt-standin.so
//   DITTY_NATIVE_ADDON=build/emu/ditty_native.node DITTY_CUBLASLT=build/emu/libcublaslt-standin.so ditty ...
//
// The CPU, CUDA and emulator objects are build-cuda-emu.mjs's (build/emu/obj*, shared with the kernel
// tests); only the bindings are compiled here. --json prints {"ok", "addon", "cublaslt", "reason"?} on
// stdout. Needs g++ and the CUDA toolkit's headers (not a GPU, not a driver).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build, EMU_CUBLASLT, EMU_DIR, EMU_FLAGS, job, probe } from './build-cuda-emu.mjs';
import { files, firstError, makeIfStale } from './native-toolchain.mjs';

export const EMU_ADDON = path.join(EMU_DIR, 'ditty_native.node');

function nodeInclude() {
  return [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node']
    .find((d) => fs.existsSync(path.join(d, 'node_api.h')));
}

/** Whether this machine can build the emulated addon: { ok } or { ok: false, reason }. */
export function emuToolchain() {
  const p = probe();
  if (!p.ok) return p;
  if (!nodeInclude()) return { ok: false, reason: 'no Node headers (node_api.h) next to node or in /usr/include/node' };
  return { ok: true };
}

/** Builds the emulated addon; resolves to { ok, addon, cublaslt } or { ok: false, reason }. */
export async function buildNativeEmu(log = (m) => process.stderr.write(`${m}\n`)) {
  const tools = emuToolchain();
  if (!tools.ok) return tools;
  const napi = createRequire(import.meta.url)('node-addon-api').include_dir;
  const addonFlags = [...EMU_FLAGS, '-fexceptions', `-I${napi}`, `-I${nodeInclude()}`, '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS',
    '-DNODE_ADDON_API_CPP_EXCEPTIONS_ALL'];
  let linked;
  const result = await build({
    variants: ['normal'], tests: false, log,
    extra: (p) => files('native/binding', /\.cpp$/).map((src) => job(p, src, path.join(EMU_DIR, 'obj-binding'), addonFlags)),
    then: (r, parts) => {
      if (r.errors.length) return;
      const inputs = [...parts.extra, ...parts.cpu, ...parts.variants.normal.cuda, ...parts.variants.normal.emu].map((j) => j.obj);
      const problem = makeIfStale(EMU_ADDON, inputs, [parts.cxx, '-shared', '-o', EMU_ADDON, ...inputs, '-pthread', '-ldl']);
      linked = problem === undefined;
      if (problem) r.errors.push({ file: path.relative(path.dirname(EMU_DIR), EMU_ADDON), message: problem });
    },
  });
  if (result.skipped) return { ok: false, reason: result.skipped };
  if (result.errors.length || !linked) {
    const e = result.errors[0];
    return { ok: false, reason: e ? `g++ failed on ${e.file}: ${firstError(e.message)}` : 'the addon was not linked' };
  }
  log(`emulated addon: ${path.relative(process.cwd(), EMU_ADDON)} (${result.compiled} files compiled in ${result.seconds} s)`);
  return { ok: true, addon: EMU_ADDON, cublaslt: result.standin ? EMU_CUBLASLT : undefined };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const json = process.argv.includes('--json');
  const result = await buildNativeEmu();
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (!result.ok) process.stderr.write(`ditty: the emulated addon was not built: ${result.reason}\n`);
  process.exit(result.ok ? 0 : 1);
}
