import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../engine/backend.js';
import { resolveBackend, type Backend } from '../engine/choice.js';
import type { AdamWSettings, Checkpointing, MicroBatch } from '../engine/engine.js';
import { matMul } from '../engine/matmul.js';
import { DEVICE, DTYPE, loadAddon, type NativeAddon, type NativeDeviceKind } from '../engine/native/addon.js';
import { AddonProfile } from '../engine/native/profile.js';
import { enableTimers, timerTotals } from '../engine/timers.js';
import { Rng } from '../random/rng.js';
import { numel } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import { DEFAULT_TARGET_MODULES } from '../config/schema.js';
import type { LoraConfig } from '../lora/config.js';
import { injectLora } from '../lora/lora-linear.js';
import { parseModelConfig, readModelConfig, type ModelConfig } from '../models/config.js';
import { buildModel, weightLoaderOptions } from '../models/load.js';
import { WEIGHT_NAMES } from '../models/weight-names.js';
import { NativeEngine } from '../runtime/native-engine.js';
import { TfjsEngine } from '../runtime/tfjs-engine.js';
import { tapeBytes, WASM_HEAP_BYTES } from '../train/memory-estimate.js';
import { RandomTensorSource } from './random-model.js';
import { MODEL_SHAPES } from './shapes.js';

export interface BenchOptions {
  /** a shape name from MODEL_SHAPES or a config.json path */
  readonly model: string;
  readonly blockSize: number;
  readonly batchSize: number;
  readonly backend: Backend;
  readonly steps: number;
  /** untimed steps before the timed ones (default 1) */
  readonly warmup?: number;
  readonly bits: 4 | 16;
  readonly checkpointing: Checkpointing;
  readonly loraR: number;
}

export type SplitName = 'dequant' | 'gemm' | 'wkv' | 'other';

export interface BenchResult {
  readonly model: string;
  /** the engine that ran, e.g. "native cpu (avx512, 2 threads, gemm ditty avx512)" or "tfjs wasm" */
  readonly backend: string;
  readonly parameters: number;
  /** parameters that cost FLOPs per token (all but the embedding table) */
  readonly computeParameters: number;
  readonly trainable: number;
  readonly tokensPerSecond: number;
  readonly flopsPerSecond: number;
  /** this engine's measured dense product rate (f32 512x2048x2048), the MFU reference on CPUs */
  readonly peakFlopsPerSecond: number;
  readonly mfu: number;
  readonly stepSeconds: number;
  /** peak bytes of the engine's tensors / buffers */
  readonly peakTensorBytes: number;
  /** cuda: the most bytes the caching allocator held from the driver (what nvidia-smi would show, less the context) */
  readonly peakDeviceBytes?: number;
  readonly peakRssBytes: number;
  /** shares of the timed steps; on the native engine dequant is estimated (it is fused into the products) */
  readonly split: Readonly<Record<SplitName, number>>;
  readonly loadSeconds: number;
  /** what backward recomputed; 'full (auto)' when turned on because the tape would not fit the wasm heap */
  readonly checkpointing: string;
}

function configFor(model: string): Record<string, unknown> {
  const shape = MODEL_SHAPES[model];
  if (shape) return shape;
  if (fs.existsSync(model)) return { ...readModelConfig(model).raw };
  throw new InputError(`--model ${model}: not a known shape (${Object.keys(MODEL_SHAPES).join(', ')}) nor a config.json file`);
}

/** The best of a few runs of `run` after one warm-up, as a rate of `flops` per second. */
function bestRate(flops: number, run: () => void): number {
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    run();
    if (i > 0) best = Math.min(best, performance.now() - t);
  }
  return flops / (best / 1000);
}

/** A dense product rate of the tfjs backend: 512x2048x2048. */
function measureTfjsPeak(): number {
  const a = tf.randomNormal([512, 2048]);
  const b = tf.randomNormal([2048, 2048]);
  const rate = bestRate(2 * 512 * 2048 * 2048, () => {
    const c = matMul(a, b);
    c.dataSync();
    c.dispose();
  });
  a.dispose();
  b.dispose();
  return rate;
}

/** The native engine's dense product rate: 512x2048x2048 in f32, x W^T as the linears multiply. */
function measureNativePeak(addon: NativeAddon, device: NativeDeviceKind): number {
  // cpu (and the CPU emulation of cuda): float32 at a training-step shape; a GPU: bf16 8192^3 (as GPU
  // ceilings are quoted), on constant data, so a little above the random-data rate
  // scripts/gpu/matmul_peak.py measures
  const gpu = device === 'cuda' && addon.cudaInfo().emulated !== true;
  const [M, N, K, dtype] = gpu ? [8192, 8192, 8192, DTYPE.bf16] : [512, 2048, 2048, DTYPE.f32];
  const ids = [addon.alloc(dtype, M * K, DEVICE[device]), addon.alloc(dtype, N * K, DEVICE[device]), addon.alloc(dtype, M * N, DEVICE[device])];
  const [a, b, c] = ids as [number, number, number];
  addon.fill(a, 0.5);
  addon.fill(b, 0.25);
  const rate = bestRate(2 * M * N * K, () => {
    addon.gemm(false, true, M, N, K, 1, a, K, b, K, 0, c, N);
    if (device === 'cuda') addon.cudaSynchronize();
  });
  for (const id of ids) addon.free(id);
  return rate;
}

function randomBatch(o: BenchOptions, vocab: number): MicroBatch {
  const rng = new Rng(7);
  const n = o.batchSize * o.blockSize;
  return {
    rows: o.batchSize, length: o.blockSize,
    input: Int32Array.from({ length: n }, () => Math.floor(rng.next() * vocab)),
    target: Int32Array.from({ length: n }, () => Math.floor(rng.next() * vocab)),
    weight: new Uint8Array(n).fill(1),
  };
}

/** torch.optim.AdamW's betas and epsilon, no weight decay: the step every engine times. */
const BENCH_ADAMW: AdamWSettings = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

function benchLora(config: ModelConfig, r: number): LoraConfig {
  return {
    r, alpha: 2 * r, dropout: 0.05, targetModules: [...DEFAULT_TARGET_MODULES[config.model_type]],
    useRslora: false, bias: 'none', fanInFanOut: false,
  };
}

/** Which share of the time split a native addon function's time goes to. */
function nativeSplit(fn: string): SplitName {
  if (/^(nf4Linear|denseLinear|gemm|lora|headCrossEntropy)/.test(fn)) return 'gemm';
  if (/^(wkv|attention)/.test(fn)) return 'wkv';
  return 'other';
}

/**
 * The time the native engine spends dequantizing in one micro-batch, estimated as the time to
 * dequantize every NF4 weight once times the number of products that use it (forward, input
 * gradient, and the forward again under full checkpointing).
 */
function nativeDequantMs(addon: NativeAddon, engine: NativeEngine, uses: number, device: NativeDeviceKind): number {
  let ms = 0;
  for (const l of engine.nf4Weights()) {
    const out = addon.alloc(device === 'cuda' ? DTYPE.bf16 : DTYPE.f32, l.rows * l.cols, DEVICE[device]);
    const t = performance.now();
    addon.nf4DequantizeRows(l, 0, l.rows, out);
    if (device === 'cuda') addon.cudaSynchronize();
    ms += performance.now() - t;
    addon.free(out);
  }
  return ms * uses;
}

interface Sizes {
  readonly parameters: number;
  readonly computeParameters: number;
}

function sizesOf(config: ModelConfig, source: RandomTensorSource): Sizes {
  const parameters = source.names().reduce((n, name) => n + numel(source.info(name).shape), 0);
  return { parameters, computeParameters: parameters - numel(source.info(WEIGHT_NAMES[config.model_type].embedding).shape) };
}

function finish(o: BenchOptions, sizes: Sizes, seconds: number, parts: Omit<BenchResult, 'model' | 'parameters' | 'computeParameters' | 'tokensPerSecond' | 'flopsPerSecond' | 'mfu' | 'stepSeconds' | 'peakRssBytes'>): BenchResult {
  const tokensPerSecond = (o.steps * o.batchSize * o.blockSize) / seconds;
  const flopsPerSecond = 4 * sizes.computeParameters * tokensPerSecond;
  return {
    model: o.model, ...sizes, tokensPerSecond, flopsPerSecond, mfu: flopsPerSecond / parts.peakFlopsPerSecond,
    stepSeconds: seconds / o.steps, peakRssBytes: process.resourceUsage().maxRSS * 1024, ...parts,
  };
}

/** Time QLoRA training steps of a model shape with random weights and random tokens. */
export async function benchTraining(o: BenchOptions): Promise<BenchResult> {
  const configJson = configFor(o.model);
  const config = parseModelConfig(JSON.stringify(configJson), o.model);
  const { resolved, note } = resolveBackend(o.backend);
  if (note) process.stderr.write(`ditty: ${note}\n`);
  return resolved.engine === 'native' ? benchNative(o, config, configJson, resolved.device) : benchTfjs(o, config, configJson, resolved.backend);
}

async function benchNative(o: BenchOptions, config: ModelConfig, configJson: Record<string, unknown>, device: 'cpu' | 'cuda'): Promise<BenchResult> {
  const load = loadAddon();
  if (!load.addon) throw new InputError(load.reason);
  const profile = new AddonProfile(load.addon);
  const peak = measureNativePeak(load.addon, device);
  const loadStart = performance.now();
  const source = new RandomTensorSource(configJson);
  const quantization = { bits: o.bits, doubleQuant: true, blocksize: 64, skipModules: [] };
  const engine = NativeEngine.open({
    config, source, weights: weightLoaderOptions(config, source, quantization), addon: profile.addon,
    lora: { config: benchLora(config, o.loraR), seed: 1 }, adamw: BENCH_ADAMW, checkpointing: o.checkpointing, device,
  });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  try {
    const batch = randomBatch(o, config.vocab_size);
    const n = o.batchSize * o.blockSize;
    engine.resetPeak();
    const step = (i: number): void => {
      engine.accumulate(batch, n, i);
      engine.step(1e-4, 1);
    };
    for (let i = 0; i < (o.warmup ?? 1); i++) step(-1 - i); // warm-up: first allocations fill the buffer pool
    // A step ends with host reads (the loss, the gradient norm), so wall time around steps is device
    // time on cuda too. On the CPU every call is synchronous and the split is timed on the timed steps;
    // on cuda calls only queue work, so one more step is profiled with a synchronize after each call.
    const cuda = device === 'cuda';
    profile.enabled = !cuda;
    const started = performance.now();
    for (let i = 1; i <= o.steps; i++) step(i);
    const seconds = (performance.now() - started) / 1000;
    let ms = seconds * 1000;
    let profiledSteps = o.steps;
    if (cuda) {
      profile.synchronize = () => load.addon.cudaSynchronize();
      profile.enabled = true;
      const t = performance.now();
      step(o.steps + 1);
      ms = performance.now() - t;
      profiledSteps = 1;
    }
    profile.enabled = false;
    const split: Record<SplitName, number> = { dequant: 0, gemm: 0, wkv: 0, other: 0 };
    for (const [fn, t] of profile.totals) split[nativeSplit(fn)] += t / ms;
    const dequant = Math.min(split.gemm, nativeDequantMs(load.addon, engine, o.checkpointing === 'full' ? 3 : 2, device) * profiledSteps / ms);
    split.gemm -= dequant;
    split.dequant = dequant;
    split.other = Math.max(0, 1 - split.dequant - split.gemm - split.wkv);
    const memory = engine.memory();
    return finish(o, sizesOf(config, source), seconds, {
      backend: engine.description, trainable: engine.adapterTensors().reduce((k, t) => k + t.values.length, 0),
      peakFlopsPerSecond: peak, peakTensorBytes: memory.peak, peakDeviceBytes: memory.peakReserved, split, loadSeconds, checkpointing: o.checkpointing,
    });
  } finally {
    engine.dispose();
  }
}

async function benchTfjs(o: BenchOptions, config: ModelConfig, configJson: Record<string, unknown>, tfjsBackend: BackendName): Promise<BenchResult> {
  const backend = await initBackend(tfjsBackend);
  const autoCheckpointing = backend === 'wasm' && o.checkpointing === 'none'
    && tapeBytes(config, o.batchSize, o.blockSize) >= 0.6 * WASM_HEAP_BYTES;
  const checkpointing: Checkpointing = autoCheckpointing ? 'full' : o.checkpointing;
  const peak = measureTfjsPeak();
  const loadStart = performance.now();
  const source = new RandomTensorSource(configJson);
  const model = buildModel(config, source, {
    quantization: { bits: o.bits, doubleQuant: true, blocksize: 64, skipModules: [] },
  });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const layers = injectLora(model.linears, benchLora(config, o.loraR), 1);
  const engine = new TfjsEngine(model, layers, BENCH_ADAMW, checkpointing, `tfjs ${backend}`);
  try {
    const batch = randomBatch(o, config.vocab_size);
    const n = o.batchSize * o.blockSize;
    let peakTensorBytes = tf.memory().numBytes;
    const step = (i: number): void => {
      engine.accumulate(batch, n, i);
      peakTensorBytes = Math.max(peakTensorBytes, tf.memory().numBytes);
      engine.step(1e-4, 1);
    };
    for (let i = 0; i < (o.warmup ?? 1); i++) step(-1 - i); // warm-up: kernel set-up and first allocations
    enableTimers(true);
    const started = performance.now();
    for (let i = 1; i <= o.steps; i++) step(i);
    const seconds = (performance.now() - started) / 1000;
    const totals = timerTotals();
    enableTimers(false);
    const ms = seconds * 1000;
    const dequant = totals.get('dequant') ?? 0;
    const gemm = totals.get('gemm') ?? 0;
    const wkv = totals.get('wkv') ?? 0;
    return finish(o, sizesOf(config, source), seconds, {
      backend: engine.description, trainable: engine.adapterTensors().reduce((k, t) => k + t.values.length, 0),
      peakFlopsPerSecond: peak, peakTensorBytes, loadSeconds,
      checkpointing: autoCheckpointing ? 'full (auto)' : checkpointing,
      split: { dequant: dequant / ms, gemm: gemm / ms, wkv: wkv / ms, other: Math.max(0, 1 - (dequant + gemm + wkv) / ms) },
    });
  } finally {
    engine.dispose();
    model.dispose();
    tf.disposeVariables();
  }
}

export function formatBench(r: BenchResult, o: BenchOptions): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const gb = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
  return [
    `ditty bench --model ${o.model} --block-size ${o.blockSize} --batch-size ${o.batchSize} --backend ${o.backend} `
      + `--steps ${o.steps} --bits ${o.bits} --checkpointing ${o.checkpointing} --lora-r ${o.loraR}`,
    `${r.model}: ${(r.parameters / 1e6).toFixed(1)}M parameters (${(r.computeParameters / 1e6).toFixed(1)}M outside the embedding), `
      + `${r.trainable.toLocaleString('en-US')} trainable, ${o.bits === 4 ? 'NF4' : 'float32'} base, built in ${r.loadSeconds.toFixed(1)} s`,
    `${r.tokensPerSecond.toFixed(1)} tokens/s, ${r.stepSeconds.toFixed(2)} s per step of ${o.batchSize} x ${o.blockSize} tokens`,
    `${(r.flopsPerSecond / 1e9).toFixed(2)} GFLOP/s model (4N per token), MFU ${pct(r.mfu)} of the ${(r.peakFlopsPerSecond / 1e9).toFixed(1)} GFLOP/s `
      + `this ${r.backend} backend reaches in a dense product`,
    `peak tensor memory ${gb(r.peakTensorBytes)}, peak RSS ${gb(r.peakRssBytes)}, checkpointing ${r.checkpointing}`
      + `${r.checkpointing === 'full (auto)' ? ' (the tape would not fit the 4 GiB wasm heap)' : ''}`,
    `time split: dequant ${pct(r.split.dequant)}, GEMM ${pct(r.split.gemm)}, WKV/attention ${pct(r.split.wkv)}, other ${pct(r.split.other)}`
      + (r.backend.startsWith('native') ? ' (dequant estimated: it is fused into the NF4 products)' : ' (attention products count as GEMM)'),
  ].join('\n');
}
