/**
 * The native engine behind the Engine contract: weights loaded into the C++ addon, LoRA adapters in
 * one flat buffer, and the per-architecture programs (src/models/*-native.ts) driven block by block
 * under a checkpointing policy:
 *   none       every block keeps all it computed until its backward;
 *   selective  blocks keep their products' outputs; backward recomputes the element-wise rest;
 *   full       blocks keep only their input; backward recomputes the block.
 */
import type { AdamWSettings, AdapterWeight, Checkpointing, ComputeDtype, Decoder, MicroBatch, OptimizerSlot, TrainEngine } from '../engine/engine.js';
import { cudaStatus, loadAddon, type MemoryStats, type NativeAddon, type NativeDeviceKind, type Nf4Handles } from '../engine/native/addon.js';
import { NativeAdapters, type AdapterSpec } from '../engine/native/adapters.js';
import { activationDtype, NativeDevice, type Buf } from '../engine/native/device.js';
import { InputError } from '../io/errors.js';
import type { TensorSource } from '../io/tensor-source.js';
import { checkAdapter } from '../lora/adapter-check.js';
import { adapterKey, type AdapterFiles } from '../lora/adapter-files.js';
import { moduleRankAndScaling, validateLoraConfig, type LoraConfig } from '../lora/config.js';
import { dropoutSeed, initialLoraA, loraLayerSeed, type InitialWeights } from '../lora/lora-linear.js';
import { matchTargets } from '../lora/match.js';
import type { ModelConfig } from '../models/config.js';
import { GptNeoXNativeProgram } from '../models/gpt-neox-native.js';
import { loadNativeWeights, type NativeWeights } from '../models/native-weights.js';
import { WEIGHT_NAMES } from '../models/weight-names.js';
import { releaseSaved, type NativeBlockProgram, type PassContext, type Saved } from '../models/native-program.js';
import { RwkvNativeProgram } from '../models/rwkv4-native.js';
import type { WeightLoaderOptions } from '../models/weights.js';

export interface NativeEngineOptions {
  readonly config: ModelConfig;
  readonly source: TensorSource;
  readonly weights: WeightLoaderOptions;
  /** adapters to train or to evaluate with; none: the base model alone */
  readonly lora?: { readonly config: LoraConfig; readonly seed: number; readonly initial?: InitialWeights };
  /** optimizer settings; absent: an engine that scores and decodes only */
  readonly adamw?: AdamWSettings;
  readonly checkpointing?: Checkpointing;
  /** rows of logits made at a time by the head's loss */
  readonly headChunk?: number;
  /** the addon to use (e.g. a profiled one); default: the loaded addon */
  readonly addon?: NativeAddon;
  /** where buffers live and kernels run (default cpu) */
  readonly device?: NativeDeviceKind;
  /** the requested activation dtype (default auto: bf16 on cuda, fp32 on the CPU) */
  readonly computeDtype?: ComputeDtype;
}

/** An adapter to put on the linear at `path`. */
type AdapterPlacement = Omit<AdapterSpec, 'keyA' | 'keyB'> & { readonly path: string };

const BLOCK_INDEX = /^(?:rwkv\.blocks|gpt_neox\.layers)\.(\d+)\./;

export class NativeEngine implements TrainEngine {
  readonly description: string;
  adapterNames: readonly string[] = [];
  /** module paths of the adapted linears, in adapter order */
  adaptedModules: readonly string[] = [];
  readonly warnings: readonly string[];
  readonly computeDtype: 'fp32' | 'bf16';
  private readonly program: NativeBlockProgram;
  private adapters: NativeAdapters;
  private readonly adamw: AdamWSettings | undefined;
  private readonly seed: number;
  /** per adapted path: the adapter's seed */
  private readonly layerSeeds = new Map<string, number>();
  /** the lowest block holding an adapter: backward stops there */
  private lowestAdapted = 0;
  private readonly checkpointing: Checkpointing;
  private readonly headChunk: number;
  private readonly eps: number;

  private constructor(private readonly device: NativeDevice, private readonly config: ModelConfig, private readonly weights: NativeWeights, options: NativeEngineOptions) {
    this.warnings = weights.warnings;
    this.computeDtype = device.activation === 'bf16' ? 'bf16' : 'fp32';
    this.checkpointing = options.checkpointing ?? 'none';
    this.headChunk = options.headChunk ?? 256;
    this.eps = config.model_type === 'rwkv' ? config.layer_norm_epsilon : config.layer_norm_eps;
    this.program = config.model_type === 'rwkv'
      ? new RwkvNativeProgram(device, config, weights.params, weights.linears)
      : new GptNeoXNativeProgram(device, config, weights.params, weights.linears);
    const specs: AdapterPlacement[] = [];
    const lora = options.lora;
    if (lora) {
      validateLoraConfig(lora.config);
      const matched = matchTargets(weights.linears, lora.config.targetModules, {
        layersToTransform: lora.config.layersToTransform, layersPattern: lora.config.layersPattern, otherNames: weights.params.keys(),
      });
      for (const path of matched) {
        const linear = weights.linears.get(path)!;
        const { r, scaling } = moduleRankAndScaling(lora.config, path);
        const init = lora.initial?.get(path);
        specs.push({
          path, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures, r, scaling, dropout: lora.config.dropout,
          a: init?.a ?? initialLoraA(loraLayerSeed(lora.seed, path), r, linear.inFeatures), b: init?.b ?? new Float32Array(linear.outFeatures * r),
        });
      }
    }
    this.adamw = options.adamw;
    this.seed = lora?.seed ?? 0;
    this.adapters = this.install(specs);
    if (device.kind === 'cuda') {
      const cuda = device.addon.cudaInfo();
      this.description = `native cuda (${cuda.name ?? 'GPU'}${cuda.emulated ? ', emulated on the CPU' : ''}, ${this.computeDtype} activations)`;
    } else {
      const info = device.addon.buildInfo();
      this.description = `native cpu (${info.simd}, ${device.addon.threads()} threads, gemm ${info.gemm})`;
    }
  }

  /** Puts adapters with `specs` on their linears (replacing any there were). */
  private install(specs: readonly AdapterPlacement[]): NativeAdapters {
    for (const s of specs) {
      if (!BLOCK_INDEX.test(s.path)) throw new InputError(`lora.target_modules: "${s.path}" is outside the blocks; the native engine adapts linears inside blocks only (use backend wasm for this)`);
    }
    for (const l of this.weights.linears.values()) l.lora = undefined;
    this.layerSeeds.clear();
    const adapters = new NativeAdapters(this.device, specs.map((s) => ({ ...s, keyA: adapterKey(s.path, 'A'), keyB: adapterKey(s.path, 'B') })), this.adamw);
    specs.forEach((s, k) => {
      this.weights.linears.get(s.path)!.lora = adapters.slots[k];
      this.layerSeeds.set(s.path, loraLayerSeed(this.seed, s.path));
    });
    this.adaptedModules = specs.map((s) => s.path);
    this.adapterNames = adapters.names;
    this.lowestAdapted = specs.length === 0 ? this.program.numLayers : Math.min(...specs.map((s) => Number(BLOCK_INDEX.exec(s.path)![1])));
    return adapters;
  }

  /** Applies a saved adapter (checked against this model's linears), replacing the current adapters. */
  attachAdapter(adapter: AdapterFiles): number {
    const checked = checkAdapter(adapter, this.weights.linears);
    const specs = checked.map((m) => {
      const l = this.weights.linears.get(m.path)!;
      return { path: m.path, inFeatures: l.inFeatures, outFeatures: l.outFeatures, r: m.r, scaling: m.scaling, dropout: adapter.config.dropout, a: m.a, b: m.b };
    });
    this.adapters.dispose();
    this.adapters = this.install(specs);
    return checked.length;
  }

  /**
   * Loads the model into a new native engine; throws InputError naming what is missing when the
   * addon (or, on cuda, a usable CUDA device) is not there.
   */
  static open(options: NativeEngineOptions): NativeEngine {
    let addon = options.addon;
    if (!addon) {
      const load = loadAddon();
      if (!load.addon) throw new InputError(load.reason);
      addon = load.addon;
    }
    const kind = options.device ?? 'cpu';
    if (kind === 'cuda' && !options.addon) {
      const cuda = cudaStatus();
      if (!cuda.usable) throw new InputError(`backend cuda: ${cuda.reason}`);
    }
    const { dtype, note } = activationDtype(kind, options.computeDtype ?? 'auto');
    const device = new NativeDevice(addon, kind, dtype);
    const weights = loadNativeWeights(device, options.config, options.source, options.weights);
    if (note) weights.warnings.push(note);
    try {
      return new NativeEngine(device, options.config, weights, options);
    } catch (err) {
      weights.dispose();
      throw err;
    }
  }

  /** the NF4 weights of the linears (for benchmarks that time their dequantization) */
  nf4Weights(): Nf4Handles[] {
    return [...this.weights.linears.values()].flatMap((l) => (l.base.kind === 'nf4' ? [l.base.handles] : []));
  }

  /** bytes held by the engine's buffers on its device (peak since the last reset) */
  memory(): MemoryStats {
    return this.device.memory();
  }

  resetPeak(): void {
    this.device.resetPeak();
  }

  private context(batch: MicroBatch, microStep: number | undefined): PassContext {
    return {
      B: batch.rows, T: batch.length,
      dropoutSeed: (path) => {
        if (microStep === undefined) return undefined;
        const s = this.layerSeeds.get(path);
        return s === undefined ? undefined : dropoutSeed(s, microStep, 0);
      },
    };
  }

  private embed(batch: MicroBatch): Buf {
    const N = batch.rows * batch.length, C = this.config.hidden_size;
    const ids = this.device.upload(batch.input);
    const x = this.device.act(N * C);
    try {
      this.device.addon.embeddingForward(ids.id, N, this.weights.params.get(WEIGHT_NAMES[this.config.model_type].embedding)!.id, this.config.vocab_size, C, x.id);
    } catch (err) {
      // the buffers are the engine's own: only a token id can be wrong, which is the input's fault
      this.device.release(x);
      throw new InputError(`${(err as Error).message.replace(/^ids: /, 'token ')}: the model's vocabulary has ${this.config.vocab_size} entries `
        + '(does the tokenizer belong to this model?)');
    } finally {
      this.device.release(ids);
    }
    return x;
  }

  /** The loss sum of the final hidden states x [N, C]; with `normalizer`, also d loss / d x (scaled by 1/normalizer). */
  private head(x: Buf, batch: MicroBatch, normalizer: number | undefined): { loss: number; dx?: Buf } {
    const a = this.device.addon;
    const N = batch.rows * batch.length, C = this.config.hidden_size;
    const norm = WEIGHT_NAMES[this.config.model_type].finalNorm;
    const w = this.weights.params.get(`${norm}.weight`)!, b = this.weights.params.get(`${norm}.bias`)!;
    const hf = this.device.act(N * C), mean = this.device.f32(N), rstd = this.device.f32(N);
    const targets = this.device.upload(batch.target);
    const weights = this.device.upload(Float32Array.from(batch.weight));
    const dhf = normalizer === undefined ? undefined : this.device.act(N * C);
    try {
      a.layernormForward(x.id, w.id, b.id, N, C, this.eps, hf.id, mean.id, rstd.id);
      const loss = a.headCrossEntropy(hf.id, N, C, this.weights.head.id, this.config.vocab_size, targets.id, weights.id,
        normalizer === undefined ? 0 : 1 / normalizer, dhf?.id ?? -1, false, this.headChunk);
      if (!dhf) return { loss };
      const dx = this.device.act(N * C);
      a.layernormBackward(dhf.id, x.id, w.id, mean.id, rstd.id, N, C, dx.id, false);
      return { loss, dx };
    } finally {
      this.device.release(hf, mean, rstd, targets, weights, dhf);
    }
  }

  accumulate(batch: MicroBatch, normalizer: number, microStep: number): number {
    const ctx = this.context(batch, microStep);
    const L = this.program.numLayers;
    const inputs: Buf[] = [this.embed(batch)];
    const saved: Saved[] = [];
    try {
      for (let i = 0; i < L; i++) {
        const s: Saved = new Map();
        saved.push(s);
        inputs.push(this.program.materialize(i, inputs[i]!, s, ctx, true)!);
        if (i < this.lowestAdapted || this.checkpointing === 'full') releaseSaved(this.device, s);
        else if (this.checkpointing === 'selective') this.program.dropElementwise(s);
      }
      const { loss, dx: top } = this.head(inputs[L]!, batch, normalizer);
      let dx: Buf | undefined = top;
      for (let i = L - 1; i >= this.lowestAdapted && dx; i--) {
        const s = saved[i]!;
        if (this.checkpointing !== 'none') this.program.materialize(i, inputs[i]!, s, ctx, false);
        const below: Buf | undefined = this.program.backward(i, inputs[i]!, s, dx, ctx, i > this.lowestAdapted);
        this.device.release(dx);
        releaseSaved(this.device, s);
        dx = below;
      }
      this.device.release(dx);
      return loss / normalizer;
    } finally {
      for (const s of saved) releaseSaved(this.device, s);
      this.device.release(...inputs);
    }
  }

  /** Every block on the embedding of `batch`, keeping nothing: the last block's output. */
  private forwardOnly(batch: MicroBatch, ctx: PassContext): Buf {
    let x = this.embed(batch);
    try {
      for (let i = 0; i < this.program.numLayers; i++) {
        const s: Saved = new Map();
        const out = this.program.materialize(i, x, s, ctx, true)!;
        releaseSaved(this.device, s);
        this.device.release(x);
        x = out;
      }
      return x;
    } catch (err) {
      this.device.release(x);
      throw err;
    }
  }

  lossSum(batch: MicroBatch): number {
    const x = this.forwardOnly(batch, this.context(batch, undefined));
    try {
      return this.head(x, batch, undefined).loss;
    } finally {
      this.device.release(x);
    }
  }

  step(lr: number, maxGradNorm: number): number {
    return this.adapters.step(lr, maxGradNorm);
  }

  decoder(): Decoder {
    const layers = Array.from({ length: this.program.numLayers }, () => this.program.initLayerState(1));
    let offset = 0;
    const a = this.device.addon;
    const C = this.config.hidden_size, V = this.config.vocab_size;
    return {
      feed: (ids: readonly number[]): Float32Array => {
        const T = ids.length;
        const batch: MicroBatch = { rows: 1, length: T, input: Int32Array.from(ids), target: new Int32Array(T), weight: new Uint8Array(T) };
        const ctx: PassContext = { B: 1, T, dropoutSeed: () => undefined, decode: { offset, layer: (i) => layers[i]! } };
        const x = this.forwardOnly(batch, ctx);
        try {
          // the final norm and the head on the last position only
          const norm = WEIGHT_NAMES[this.config.model_type].finalNorm;
          const last = this.device.act(C), hf = this.device.act(C), mean = this.device.f32(1), rstd = this.device.f32(1), logits = this.device.f32(V);
          try {
            a.copy(last.id, 0, x.id, (T - 1) * C, C);
            a.layernormForward(last.id, this.weights.params.get(`${norm}.weight`)!.id, this.weights.params.get(`${norm}.bias`)!.id, 1, C, this.eps, hf.id, mean.id, rstd.id);
            a.gemm(false, true, 1, V, C, 1, hf.id, C, this.weights.head.id, C, 0, logits.id, V);
            offset += T;
            return this.device.read(logits);
          } finally {
            this.device.release(last, hf, mean, rstd, logits);
          }
        } finally {
          this.device.release(x);
        }
      },
      dispose: (): void => {
        for (const l of layers) {
          this.device.free(...l.values());
          l.clear();
        }
      },
    };
  }

  adapterTensors(): AdapterWeight[] {
    return this.adapters.tensors();
  }

  loadAdapter(values: ReadonlyMap<string, Float32Array>, where: string): void {
    this.adapters.load(values, where, (m) => new InputError(m));
  }

  optimizerState(): { step: number; slots: Map<string, OptimizerSlot> } {
    return this.adapters.optimizerState();
  }

  loadOptimizerState(slots: ReadonlyMap<string, OptimizerSlot>, step: number): void {
    this.adapters.loadOptimizerState(slots, step, (m) => new InputError(m));
  }

  dispose(): void {
    for (const l of this.weights.linears.values()) l.lora = undefined;
    this.adapters.dispose();
    this.weights.dispose();
    this.device.trim();
  }
}
