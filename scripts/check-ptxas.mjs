// Fails if any CUDA kernel spills registers to local memory on sm_90 (spill stores or loads > 0): the
// emulator cannot see register pressure, ptxas can. Prints a table (kernel, registers, stack frame,
// spills) per file. A file's ptxas -v report comes from the `npm ci` build (build-native.mjs keeps it
// beside the object) when that object is current and was built for the arch; otherwise the file is
// compiled for the arch alone with `nvcc -Xptxas -v`.
//
//   node scripts/check-ptxas.mjs [--json] [--arch 90] [file.cu ...]
//
// Exit 0: no spills; 1: spills or a compile error; 2: no nvcc (the reason on stderr, or in --json).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CUDA_OBJ_DIR, findNvcc, gencodeFlags, objectCommand, objectFor, objectIsCurrent, ptxasReportFor, root } from './native-toolchain.mjs';

/** The hot kernels: every kernel file of the CUDA device. */
export function kernelFiles() {
  return ['native/cuda/kernels', 'native/cuda/bind'].flatMap((dir) => {
    const abs = path.join(root, dir);
    return fs.existsSync(abs) ? fs.readdirSync(abs).filter((f) => f.endsWith('.cu')).sort().map((f) => `${dir}/${f}`) : [];
  });
}

/**
 * Per-kernel rows from ptxas -v output: { kernel, registers, stack, spillStores, spillLoads }; with
 * `arch` ("90"), only the kernels compiled for sm_<arch> (a fat build reports each arch).
 */
export function parsePtxas(text, arch) {
  const rows = [];
  let current;
  for (const line of text.split('\n')) {
    let m = /Compiling entry function '([^']+)'(?: for 'sm_(\w+)')?/.exec(line);
    if (m) {
      current = arch === undefined || m[2] === undefined || m[2] === arch ? { kernel: m[1], registers: 0, stack: 0, spillStores: 0, spillLoads: 0 } : undefined;
      if (current) rows.push(current);
      continue;
    }
    if (!current) continue;
    m = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (m) {
      current.stack = Number(m[1]);
      current.spillStores = Number(m[2]);
      current.spillLoads = Number(m[3]);
    }
    m = /Used (\d+) registers/.exec(line);
    if (m) current.registers = Number(m[1]);
  }
  return rows;
}

function demangle(names) {
  return new Promise((resolve) => {
    const child = spawn('c++filt', [], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', () => resolve(names));
    child.on('close', () => {
      const lines = out.split('\n');
      resolve(names.map((n, i) => lines[i] || n));
    });
    child.stdin.end(`${names.join('\n')}\n`);
  });
}

/**
 * The report of the `npm ci` build for `file`, when its object is current, was built for sm_<arch>, and
 * the report came from that compile (the build writes it after the object).
 */
function buildReport(file, arch) {
  const obj = objectFor(CUDA_OBJ_DIR, file);
  const report = ptxasReportFor(obj);
  if (!objectCommand(obj)?.includes(gencodeFlags([arch])[0]) || !objectIsCurrent(obj, file)) return undefined;
  if (!fs.existsSync(report) || fs.statSync(report).mtimeMs < fs.statSync(obj).mtimeMs) return undefined;
  const text = fs.readFileSync(report, 'utf8');
  return { file, ok: true, text, rows: parsePtxas(text, arch), from: 'build' };
}

function compile(nvcc, arch, file) {
  return new Promise((resolve) => {
    const args = ['-x', 'cu', '-std=c++20', '-O3', '-cubin', `-arch=sm_${arch}`, '-Xptxas', '-v', '-DDITTY_WITH_CUDA',
      '-Inative/include', '-Inative/cuda/include', '-Inative', file, '-o', path.join(os.tmpdir(), `ditty-ptxas-${process.pid}-${path.basename(file)}.cubin`)];
    const child = spawn(nvcc, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.stderr.on('data', (d) => { text += d; });
    child.on('error', (e) => resolve({ file, ok: false, text: e.message, rows: [] }));
    child.on('close', (code) => resolve({ file, ok: code === 0, text, rows: parsePtxas(text, arch), from: 'compiled' }));
  });
}

/**
 * Checks `files` (default: kernelFiles()) for arch; { ok, reason?, files: [{ file, ok, from, rows, error? }] },
 * from: 'build' (the npm ci build's report) or 'compiled'. `reuse: false` compiles every file.
 */
export async function checkPtxas(files = kernelFiles(), arch = '90', { reuse = true } = {}) {
  const found = findNvcc();
  if (!found) return { ok: false, missing: true, reason: 'nvcc was not found (PATH, CUDA_HOME, /usr/local/cuda*)', files: [] };
  const results = [];
  const todo = [];
  for (const file of files) {
    const reused = reuse ? buildReport(file, arch) : undefined;
    if (reused) results.push(reused);
    else todo.push(file);
  }
  let next = 0;
  const worker = async () => {
    while (next < todo.length) results.push(await compile(found.nvcc, arch, todo[next++]));
  };
  await Promise.all(Array.from({ length: Math.min(todo.length, Math.max(1, os.availableParallelism())) }, worker));
  results.sort((a, b) => a.file.localeCompare(b.file));
  for (const r of results) {
    const names = await demangle(r.rows.map((row) => row.kernel));
    r.rows.forEach((row, i) => {
      row.kernel = names[i].replace(/^void /, '').replace(/\(anonymous namespace\)::/g, '').replace(/^ditty::cuda::/, '').replace(/\(.*$/, '');
    });
    fs.rmSync(path.join(os.tmpdir(), `ditty-ptxas-${process.pid}-${path.basename(r.file)}.cubin`), { force: true });
  }
  const spilling = results.flatMap((r) => r.rows.filter((row) => row.spillStores > 0 || row.spillLoads > 0));
  const failed = results.filter((r) => !r.ok);
  return {
    ok: spilling.length === 0 && failed.length === 0,
    ...(failed.length ? { reason: `nvcc failed on ${failed.map((f) => f.file).join(', ')}` } : spilling.length ? { reason: `${spilling.length} kernel(s) spill registers` } : {}),
    files: results.map((r) => ({ file: r.file, ok: r.ok, from: r.from, rows: r.rows, ...(r.ok ? {} : { error: r.text.split('\n').filter((l) => /error/.test(l)).slice(0, 3).join('\n') }) })),
  };
}

export function formatTable(result, arch = '90') {
  const lines = [`ptxas sm_${arch}: registers, stack frame and spills per kernel`];
  const width = Math.min(90, Math.max(20, ...result.files.flatMap((f) => f.rows.map((r) => r.kernel.length))));
  lines.push(`${'kernel'.padEnd(width)}  regs  stack  spill-st  spill-ld`);
  for (const f of result.files) {
    lines.push(`${f.file} (${f.from === 'build' ? 'report of the npm ci build' : 'compiled for this check'})${f.ok ? '' : `  FAILED\n${f.error}`}`);
    for (const r of f.rows) {
      const flag = r.spillStores || r.spillLoads ? '  <- spills' : '';
      lines.push(`${r.kernel.slice(0, width).padEnd(width)}  ${String(r.registers).padStart(4)}  ${String(r.stack).padStart(5)}  ${String(r.spillStores).padStart(8)}  ${String(r.spillLoads).padStart(8)}${flag}`);
    }
  }
  lines.push(result.ok ? 'no kernel spills' : `FAIL: ${result.reason}`);
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const ai = argv.indexOf('--arch');
  const arch = ai >= 0 ? argv[ai + 1].replace(/^sm_/, '') : '90';
  const files = argv.filter((a) => a.endsWith('.cu'));
  const result = await checkPtxas(files.length ? files : kernelFiles(), arch);
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (result.missing) process.stderr.write(`ditty: ptxas check skipped: ${result.reason}\n`);
  else process.stdout.write(`${formatTable(result, arch)}\n`);
  process.exit(result.missing ? 2 : result.ok ? 0 : 1);
}
