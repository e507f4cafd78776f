import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../engine/backend.js';
import { matMul } from '../engine/matmul.js';
import { enableTimers, timerTotals } from '../engine/timers.js';
import { numel } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import { readJsonFile } from '../io/json.js';
import { adapterVariables } from '../lora/adapter-io.js';
import { DEFAULT_TARGET_MODULES } from '../lora/config.js';
import { injectLora, setLoraTraining } from '../lora/lora-linear.js';
import { parseModelConfig } from '../models/config.js';
import { buildModel } from '../models/load.js';
import { AdamW } from '../train/adamw.js';
import { groupByBlock, microBatchGradients, type MicroBatch } from '../train/step-gradients.js';
import { Rng } from '../generate/rng.js';
import { RandomTensorSource } from './random-model.js';
import { tapeBytes, WASM_HEAP_BYTES } from '../train/memory-estimate.js';
import { MODEL_SHAPES } from './shapes.js';

export interface BenchOptions {
  /** a shape name from MODEL_SHAPES or a config.json path */
  readonly model: string;
  readonly blockSize: number;
  readonly batchSize: number;
  readonly backend: BackendName;
  readonly steps: number;
  readonly bits: 4 | 16;
  readonly gradientCheckpointing: boolean;
  readonly loraR: number;
}

export interface BenchResult {
  readonly model: string;
  readonly backend: string;
  readonly parameters: number;
  /** parameters that cost FLOPs per token (all but the embedding table) */
  readonly computeParameters: number;
  readonly trainable: number;
  readonly tokensPerSecond: number;
  readonly flopsPerSecond: number;
  /** this backend's measured dense product rate, the MFU reference on CPUs */
  readonly peakFlopsPerSecond: number;
  readonly mfu: number;
  readonly stepSeconds: number;
  readonly peakTensorBytes: number;
  readonly peakRssBytes: number;
  readonly split: Readonly<Record<'dequant' | 'gemm' | 'wkv' | 'other', number>>;
  readonly loadSeconds: number;
  /** 'auto' when turned on because the tape would not fit the wasm heap */
  readonly gradientCheckpointing: 'on' | 'off' | 'auto';
}

function configFor(model: string): Record<string, unknown> {
  const shape = MODEL_SHAPES[model];
  if (shape) return shape;
  if (fs.existsSync(model)) {
    const json = readJsonFile(model);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError(`${model}: expected a config.json object`);
    return json as Record<string, unknown>;
  }
  throw new InputError(`--model ${model}: not a known shape (${Object.keys(MODEL_SHAPES).join(', ')}) nor a config.json file`);
}

/** A dense product rate of the backend: the best of a few 512x2048x2048 products. */
function measurePeak(): number {
  const a = tf.randomNormal([512, 2048]);
  const b = tf.randomNormal([2048, 2048]);
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    const c = matMul(a, b);
    c.dataSync();
    c.dispose();
    if (i > 0) best = Math.min(best, performance.now() - t);
  }
  a.dispose();
  b.dispose();
  return (2 * 512 * 2048 * 2048) / (best / 1000);
}

/** Time QLoRA training steps of a model shape with random weights and random tokens. */
export async function benchTraining(o: BenchOptions): Promise<BenchResult> {
  const configJson = configFor(o.model);
  const config = parseModelConfig(JSON.stringify(configJson), o.model);
  const backend = await initBackend(o.backend);
  const autoCheckpointing = backend === 'wasm' && !o.gradientCheckpointing
    && tapeBytes(config, o.batchSize, o.blockSize) >= 0.6 * WASM_HEAP_BYTES;
  const checkpointing = o.gradientCheckpointing || autoCheckpointing;
  const peak = measurePeak();
  const loadStart = performance.now();
  const source = new RandomTensorSource(configJson);
  const model = buildModel(config, source, {
    quantization: { bits: o.bits, doubleQuant: true, blocksize: 64, skipModules: [] },
  });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const parameters = source.names().reduce((n, name) => n + numel(source.info(name).shape), 0);
  const embedding = config.model_type === 'rwkv' ? 'rwkv.embeddings.weight' : 'gpt_neox.embed_in.weight';
  const computeParameters = parameters - numel(source.info(embedding).shape);
  const layers = injectLora(model.linears, {
    r: o.loraR, alpha: 2 * o.loraR, dropout: 0.05, targetModules: [...DEFAULT_TARGET_MODULES[config.model_type]],
    useRslora: false, bias: 'none', fanInFanOut: false,
  }, 1);
  const variables = adapterVariables(layers);
  const trainable = [...variables.values()].reduce((n, v) => n + v.size, 0);
  const optimizer = new AdamW(variables, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
  const groups = groupByBlock(layers);
  const rng = new Rng(7);
  const n = o.batchSize * o.blockSize;
  const batch: MicroBatch = {
    rows: o.batchSize, length: o.blockSize,
    input: Int32Array.from({ length: n }, () => Math.floor(rng.next() * config.vocab_size)),
    target: Int32Array.from({ length: n }, () => Math.floor(rng.next() * config.vocab_size)),
    weight: new Uint8Array(n).fill(1),
  };
  let peakTensorBytes = tf.memory().numBytes;
  const step = (i: number): void => {
    setLoraTraining(layers, true, i);
    const r = microBatchGradients(model, groups, variables, batch, n, checkpointing);
    setLoraTraining(layers, false);
    peakTensorBytes = Math.max(peakTensorBytes, tf.memory().numBytes);
    optimizer.step(r.grads, 1e-4);
    for (const g of r.grads.values()) g.dispose();
  };
  step(0); // warm-up: kernel set-up and first allocations
  enableTimers(true);
  const started = performance.now();
  for (let i = 1; i <= o.steps; i++) step(i);
  const seconds = (performance.now() - started) / 1000;
  const totals = timerTotals();
  enableTimers(false);
  optimizer.dispose();
  model.dispose();
  tf.disposeVariables();
  const tokensPerSecond = (o.steps * n) / seconds;
  const flopsPerSecond = 4 * computeParameters * tokensPerSecond;
  const ms = seconds * 1000;
  const dequant = totals.get('dequant') ?? 0;
  const gemm = totals.get('gemm') ?? 0;
  const wkv = totals.get('wkv') ?? 0;
  return {
    model: o.model, backend, parameters, computeParameters, trainable, tokensPerSecond, flopsPerSecond,
    peakFlopsPerSecond: peak, mfu: flopsPerSecond / peak, stepSeconds: seconds / o.steps, peakTensorBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024, loadSeconds, gradientCheckpointing: checkpointing ? (autoCheckpointing ? 'auto' : 'on') : 'off',
    split: { dequant: dequant / ms, gemm: gemm / ms, wkv: wkv / ms, other: Math.max(0, 1 - (dequant + gemm + wkv) / ms) },
  };
}

export function formatBench(r: BenchResult, o: BenchOptions): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const gb = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
  return [
    `ditty bench --model ${o.model} --block-size ${o.blockSize} --batch-size ${o.batchSize} --backend ${o.backend} `
      + `--steps ${o.steps} --bits ${o.bits}${o.gradientCheckpointing ? ' --gradient-checkpointing' : ''} --lora-r ${o.loraR}`,
    `${r.model}: ${(r.parameters / 1e6).toFixed(1)}M parameters (${(r.computeParameters / 1e6).toFixed(1)}M outside the embedding), `
      + `${r.trainable.toLocaleString('en-US')} trainable, ${o.bits === 4 ? 'NF4' : 'float32'} base, built in ${r.loadSeconds.toFixed(1)} s`,
    `${r.tokensPerSecond.toFixed(1)} tokens/s, ${r.stepSeconds.toFixed(2)} s per step of ${o.batchSize} x ${o.blockSize} tokens`,
    `${(r.flopsPerSecond / 1e9).toFixed(2)} GFLOP/s model (4N per token), MFU ${pct(r.mfu)} of the ${(r.peakFlopsPerSecond / 1e9).toFixed(1)} GFLOP/s `
      + `this ${r.backend} backend reaches in a dense product`,
    `peak tensor memory ${gb(r.peakTensorBytes)}, peak RSS ${gb(r.peakRssBytes)}, gradient checkpointing ${r.gradientCheckpointing}`
      + `${r.gradientCheckpointing === 'auto' ? ' (the tape would not fit the 4 GiB wasm heap)' : ''}`,
    `time split: dequant ${pct(r.split.dequant)}, GEMM ${pct(r.split.gemm)}, WKV ${pct(r.split.wkv)}, other ${pct(r.split.other)} `
      + '(attention products count as GEMM)',
  ].join('\n');
}
