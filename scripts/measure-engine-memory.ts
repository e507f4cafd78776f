/**
 * Memory of a model quantized on load: the 169M RWKV-4 shape with random weights.
 *
 *   npx tsc -p . && node --expose-gc dist/scripts/measure-engine-memory.js [--shape rwkv-169m] [--dtype F32]
 *
 * Writes the random checkpoint to a temporary folder, then (in a fresh child process) loads it with
 * NF4 quantization on load (blocksize 64, double quant) and reports: bytes held per parameter of the
 * quantized linears (sum of Nf4Linear.bytesHeld() / their parameters; goal <= 0.52), tf.memory()
 * bytes (embeddings, norms, head and time_* only), and process RSS before and after the load, plus
 * peak RSS. The temporary folder is removed at the end.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { MODEL_SHAPES } from '../src/bench/shapes.js';
import { writeRandomModel } from '../src/bench/random-model.js';
import { initBackend } from '../src/engine/backend.js';
import { Nf4Linear } from '../src/models/nf4-linear.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { parseModelConfig } from '../src/models/config.js';
import { buildModel } from '../src/models/load.js';
import { DEFAULT_QUANTIZATION } from '../src/quant/options.js';

const COMMAND = 'npx tsc -p . && node --expose-gc dist/scripts/measure-engine-memory.js';

interface ChildReport {
  quantizedLinears: number;
  floatLinears: number;
  quantizedParameters: number;
  nf4BytesHeld: number;
  tfBytes: number;
  tfTensors: number;
  otherParamBytes: number;
  rssBefore: number;
  rssAfter: number;
  heapAfter: number;
  peakRss: number;
  seconds: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function child(folder: string): Promise<void> {
  await initBackend('wasm');
  const config = parseModelConfig(fs.readFileSync(path.join(folder, 'config.json'), 'utf8'), 'config.json');
  collect();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const source = await openCheckpoint(folder);
  const model = buildModel(config, source, { quantization: DEFAULT_QUANTIZATION });
  source.close();
  const seconds = (performance.now() - t0) / 1000;
  collect();
  const layers = [...model.linears.values()];
  const nf4 = layers.filter((l): l is Nf4Linear => l instanceof Nf4Linear);
  const report: ChildReport = {
    quantizedLinears: nf4.length,
    floatLinears: layers.length - nf4.length,
    quantizedParameters: nf4.reduce((s, l) => s + l.state.n, 0),
    nf4BytesHeld: nf4.reduce((s, l) => s + l.bytesHeld(), 0),
    tfBytes: tf.memory().numBytes,
    tfTensors: tf.memory().numTensors,
    otherParamBytes: [...model.otherParams.values()].reduce((s, t) => s + 4 * t.size, 0),
    rssBefore,
    rssAfter: process.memoryUsage().rss,
    heapAfter: process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers,
    peakRss: process.resourceUsage().maxRSS * 1024,
    seconds,
  };
  model.dispose();
  process.stdout.write(JSON.stringify(report));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!);
  const shape = arg('--shape', 'rwkv-169m');
  const dtype = arg('--dtype', 'F32') as 'F32' | 'BF16' | 'F16';
  const config = MODEL_SHAPES[shape];
  if (!config) throw new Error(`unknown --shape ${shape}; one of ${Object.keys(MODEL_SHAPES).join(', ')}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-engine-mem-'));
  const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
  console.log(`reproduce: ${COMMAND} --shape ${shape} --dtype ${dtype}`);
  try {
    const fileBytes = await writeRandomModel(tmp, config, { dtype, seed: 1 });
    const run = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', tmp], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (run.status !== 0) throw new Error(`child failed (${run.status}): ${run.stderr}`);
    const r = JSON.parse(run.stdout) as ChildReport;
    console.log(`${shape} random weights, ${dtype} checkpoint ${mib(fileBytes)}, node ${process.version}, wasm backend`);
    console.log(`loaded with NF4 on load (blocksize 64, double quant) in ${r.seconds.toFixed(2)} s`);
    console.log(`quantized linears: ${r.quantizedLinears} (${r.quantizedParameters.toLocaleString('en-US')} parameters), float linears: ${r.floatLinears} (head)`);
    console.log(`Nf4Linear bytes held: ${r.nf4BytesHeld.toLocaleString('en-US')} = ${(r.nf4BytesHeld / r.quantizedParameters).toFixed(4)} bytes per quantized parameter (goal <= 0.52)`);
    console.log(`tf.memory(): ${mib(r.tfBytes)} in ${r.tfTensors} tensors; embeddings, norms, time_* ${mib(r.otherParamBytes)} + head ${mib(r.tfBytes - r.otherParamBytes)}`);
    console.log(`float32 size of the quantized linears (never held): ${mib(4 * r.quantizedParameters)}`);
    console.log(`process RSS: ${mib(r.rssBefore)} before load, ${mib(r.rssAfter)} after (+${mib(r.rssAfter - r.rssBefore)}), peak ${mib(r.peakRss)}; JS heap + array buffers after ${mib(r.heapAfter)}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
