/**
 * Both engines on one model, for the parity tests: the tfjs engine (the reference, on wasm) and the
 * native engine, opened from the same weights with the same quantization, LoRA config, seed and
 * initial adapter weights.
 */
import type { AdamWSettings, Checkpointing, MicroBatch, TrainEngine } from '../../src/engine/engine.js';
import { TensorMap, type TensorInfo, type TensorSource } from '../../src/io/tensor-source.js';
import { fromFloat32 } from '../../src/io/dtypes.js';
import { checkpointPlan } from '../../src/bench/random-model.js';
import { Rng } from '../../src/random/rng.js';
import type { LoraConfig } from '../../src/lora/config.js';
import { injectLora, type InitialWeights } from '../../src/lora/lora-linear.js';
import { matchTargets } from '../../src/lora/match.js';
import { parseModelConfig, type ModelConfig } from '../../src/models/config.js';
import { buildModel, weightLoaderOptions } from '../../src/models/load.js';
import type { QuantizationOptions } from '../../src/quant/options.js';
import { NativeEngine } from '../../src/runtime/native-engine.js';
import { TfjsEngine } from '../../src/runtime/tfjs-engine.js';

export interface ParitySetup {
  readonly config: ModelConfig;
  /** a fresh source of the same weights (each engine closes its own) */
  readonly source: () => TensorSource;
  readonly bits: 4 | 16;
  readonly lora?: { readonly config: LoraConfig; readonly seed: number; readonly initial?: InitialWeights };
  readonly adamw?: AdamWSettings;
  /** rows of logits the native head makes at a time (default: the engine's) */
  readonly headChunk?: number;
}

export const ADAMW: AdamWSettings = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

export function quantization(bits: 4 | 16): QuantizationOptions {
  return { bits, doubleQuant: true, blocksize: 64, skipModules: [] };
}

export interface Opened {
  readonly engine: TrainEngine;
  dispose(): void;
}

export function openNative(s: ParitySetup, checkpointing: Checkpointing = 'none'): Opened {
  const source = s.source();
  try {
    const engine = NativeEngine.open({
      config: s.config, source, weights: weightLoaderOptions(s.config, source, quantization(s.bits)),
      ...(s.lora ? { lora: s.lora } : {}), adamw: s.adamw ?? ADAMW, checkpointing, ...(s.headChunk !== undefined ? { headChunk: s.headChunk } : {}),
    });
    return { engine, dispose: () => engine.dispose() };
  } finally {
    source.close();
  }
}

/** The tfjs engine on the current tfjs backend (the tests select wasm). */
export function openTfjs(s: ParitySetup, checkpointing: Checkpointing = 'none'): Opened {
  const source = s.source();
  let model;
  try {
    model = buildModel(s.config, source, { quantization: quantization(s.bits) });
  } finally {
    source.close();
  }
  const layers = s.lora
    ? injectLora(model.linears, s.lora.config, s.lora.seed, { otherNames: model.otherParams.keys(), ...(s.lora.initial ? { initial: s.lora.initial } : {}) })
    : [];
  const engine = new TfjsEngine(model, layers, s.adamw ?? ADAMW, checkpointing, 'tfjs wasm');
  const m = model;
  return { engine, dispose: () => { engine.dispose(); m.dispose(); } };
}

/**
 * Random initial adapter weights (A and B both nonzero, so that A gets a gradient too) for every
 * linear `lora` targets among `linearPaths`.
 */
export function randomInitial(config: ModelConfig, lora: LoraConfig, seed: number): InitialWeights {
  const plan = checkpointPlan(config.raw);
  const linears = new Map<string, { inFeatures: number; outFeatures: number }>();
  for (const p of plan) {
    const m = /^(.*)\.weight$/.exec(p.name);
    if (m && p.shape.length === 2 && !/embed|^head$|embed_out/.test(m[1]!)) linears.set(m[1]!, { outFeatures: p.shape[0]!, inFeatures: p.shape[1]! });
  }
  const paths = matchTargets(linears, lora.targetModules, { layersToTransform: lora.layersToTransform, layersPattern: lora.layersPattern });
  const rng = new Rng(seed);
  const u = (n: number, scale: number): Float32Array => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * scale);
  const out = new Map<string, { a: Float32Array; b: Float32Array }>();
  for (const p of paths) {
    const l = linears.get(p)!;
    out.set(p, { a: u(lora.r * l.inFeatures, 1 / Math.sqrt(l.inFeatures)), b: u(l.outFeatures * lora.r, 0.3) });
  }
  return out;
}

type Init = (rng: Rng, i: number) => number;

/**
 * Random weights for `configJson` with scales large enough that a wrong op moves the loss visibly
 * (RandomTensorSource's std 0.02 leaves attention uniform and the logits near 0): linears std ~0.3
 * to 1/sqrt(fan-in) * 1.5, biases and norm parameters nonzero, RWKV decays spread.
 */
export class ScaledRandomSource extends TensorMap<TensorInfo> {
  constructor(configJson: Record<string, unknown>, private readonly seed: number) {
    super('scaled random weights', new Map(checkpointPlan(configJson).map((p) => [p.name, { name: p.name, dtype: 'F32', shape: p.shape }])));
  }

  readBytes(name: string): Uint8Array { return fromFloat32(this.readFloat32(name), 'F32'); }

  override readFloat32(name: string): Float32Array {
    const shape = [...this.entry(name).shape];
    const n = shape.reduce((a, b) => a * b, 1);
    let h = this.seed >>> 0;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
    const rng = new Rng(h);
    const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
    const init = this.init(name, shape, gauss);
    return Float32Array.from({ length: n }, (_, i) => init(rng, i));
  }

  private init(name: string, shape: number[], gauss: () => number): Init {
    if (/time_decay$/.test(name)) return (r) => -3 + 4 * r.next();
    if (/time_first$/.test(name)) return (r) => -1 + 2 * r.next();
    if (/time_mix_/.test(name)) return (r) => r.next();
    if (/(ln\d|ln_out|pre_ln|layernorm|layer_norm)\.weight$/.test(name)) return () => 1 + 0.3 * gauss();
    if (/\.bias$/.test(name)) return () => 0.2 * gauss();
    if (/embed|embeddings/.test(name)) return () => gauss();
    if (shape.length === 2) {
      const std = 1.5 / Math.sqrt(shape[1]!);
      return () => std * gauss();
    }
    throw new Error(`no init for ${name} [${shape.join(', ')}]`);
  }
}

export function configOf(json: Record<string, unknown>): ModelConfig {
  return parseModelConfig(JSON.stringify(json), 'config.json');
}

/** A micro-batch of random ids with a few masked positions. */
export function randomBatch(rows: number, length: number, vocab: number, seed: number, maskEvery = 5): MicroBatch {
  const rng = new Rng(seed);
  const n = rows * length;
  const ids = (): Int32Array => Int32Array.from({ length: n }, () => Math.floor(rng.next() * vocab));
  const weight = Uint8Array.from({ length: n }, (_, i) => (n > 1 && i % maskEvery === 2 ? 0 : 1));
  return { rows, length, input: ids(), target: ids(), weight };
}

/** A copy of `batch` whose weight selects position `p` (flat index) alone. */
export function onlyPosition(batch: MicroBatch, p: number): MicroBatch {
  const weight = new Uint8Array(batch.rows * batch.length);
  weight[p] = 1;
  return { ...batch, weight };
}

export function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

export interface StepResult {
  readonly evalLoss: number;
  readonly loss: number;
  readonly norm: number;
  readonly delta: Map<string, Float32Array>;
  /** the largest |weight| per tensor, for the float32 floor of (new - old) */
  readonly magnitude: Map<string, number>;
}

/** lossSum, one accumulate and one step(lr, no clipping); the update of each adapter tensor. */
export function trainStep(opened: Opened, batch: MicroBatch, normalizer: number, microStep: number, lr: number): StepResult {
  const e = opened.engine;
  const evalLoss = e.lossSum(batch);
  const before = new Map(e.adapterTensors().map((t) => [t.name, t.values]));
  const loss = e.accumulate(batch, normalizer, microStep);
  const norm = e.step(lr, 0);
  const delta = new Map<string, Float32Array>();
  const magnitude = new Map<string, number>();
  for (const t of e.adapterTensors()) {
    const old = before.get(t.name)!;
    delta.set(t.name, t.values.map((v, i) => v - old[i]!));
    magnitude.set(t.name, old.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
  }
  return { evalLoss, loss, norm, delta, magnitude };
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** max |a - b| / max |b| over one tensor. */
export function updateError(a: Float32Array, b: Float32Array): { err: number; scale: number } {
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { err: diff / scale, scale };
}
