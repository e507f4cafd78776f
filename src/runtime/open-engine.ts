/**
 * Opens a model on the engine a backend name selects: the native engine (weights loaded straight
 * into the addon) or the tfjs engine (today's models), with LoRA adapters for training or scoring.
 */
import * as tf from '@tensorflow/tfjs-core';
import { resolveBackend, type Backend } from '../engine/choice.js';
import type { AdamWSettings, Checkpointing, ComputeDtype, TrainEngine } from '../engine/engine.js';
import type { AdapterFiles } from '../lora/adapter-files.js';
import type { LoraConfig } from '../lora/config.js';
import { injectLora, type InitialWeights } from '../lora/lora-linear.js';
import { weightLoaderOptions } from '../models/load.js';
import type { BlockwiseCausalLM } from '../models/model.js';
import type { QuantizationOptions } from '../quant/options.js';
import { loadTokenizer, type TextTokenizer } from '../tokenizer/tokenizer.js';
import { applyAdapter, warnIfOtherBase } from './adapter.js';
import { NativeEngine } from './native-engine.js';
import { locateModel, openModel, openWeights, type ModelLocation } from './open-model.js';
import { TfjsEngine } from './tfjs-engine.js';

export interface OpenEngineOptions {
  readonly backend: Backend;
  /** `backend` already resolved by the caller */
  readonly resolved?: ReturnType<typeof resolveBackend>;
  readonly revision?: string;
  readonly tokenizer?: string;
  readonly progress?: boolean;
  readonly quantization?: QuantizationOptions;
  /** adapters to train (fresh or from `initial`) */
  readonly lora?: { readonly config: LoraConfig; readonly seed: number; readonly initial?: InitialWeights };
  /** a saved adapter to score or generate with (checked against the model's linears) */
  readonly adapter?: AdapterFiles;
  /** optimizer settings, to train; absent: the engine scores and decodes only */
  readonly adamw?: AdamWSettings;
  readonly checkpointing?: Checkpointing;
  /** the activation dtype asked for (native engine; default auto) */
  readonly computeDtype?: ComputeDtype;
  /** the model already located (skips resolving `name` again) */
  readonly location?: ModelLocation;
  /** notices about the choice of engine and the load (default: stderr) */
  readonly log?: (message: string) => void;
}

export interface OpenedEngine extends ModelLocation {
  readonly engine: TrainEngine;
  readonly engineKind: 'native' | 'tfjs';
  readonly tokenizer: TextTokenizer;
  /** module paths of the adapted linears, in adapter order */
  readonly adaptedModules: readonly string[];
  readonly loadSeconds: number;
  /** the tfjs model, on the tfjs engine (generation still runs on it) */
  readonly tfjsModel?: BlockwiseCausalLM;
  dispose(): void;
}

export async function openEngine(name: string, opts: OpenEngineOptions): Promise<OpenedEngine> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`ditty: ${m}\n`));
  const { resolved, note } = opts.resolved ?? resolveBackend(opts.backend);
  if (note) log(note);
  const checkpointing = opts.checkpointing ?? 'none';
  if (resolved.engine === 'native') {
    const location = opts.location ?? await locateModel(name, { ...(opts.revision !== undefined ? { revision: opts.revision } : {}), progress: opts.progress ?? true });
    const tokenizer = loadTokenizer(opts.tokenizer ?? location.folder);
    const started = performance.now();
    const source = await openWeights(location);
    let engine: NativeEngine;
    try {
      engine = NativeEngine.open({
        config: location.config, source, weights: weightLoaderOptions(location.config, source, opts.quantization),
        ...(opts.lora ? { lora: opts.lora } : {}), ...(opts.adamw ? { adamw: opts.adamw } : {}), checkpointing,
        device: resolved.device, ...(opts.computeDtype ? { computeDtype: opts.computeDtype } : {}),
      });
    } finally {
      source.close();
    }
    for (const w of engine.warnings) log(`warning: ${w}`);
    if (opts.adapter) {
      try {
        warnIfOtherBase(opts.adapter, location);
        engine.attachAdapter(opts.adapter);
      } catch (err) {
        engine.dispose();
        throw err;
      }
    }
    return {
      ...location, engine, engineKind: 'native', tokenizer, adaptedModules: engine.adaptedModules,
      loadSeconds: (performance.now() - started) / 1000, dispose: () => engine.dispose(),
    };
  }
  const opened = await openModel(name, {
    backend: resolved.backend,
    ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
    ...(opts.tokenizer !== undefined ? { tokenizer: opts.tokenizer } : {}),
    ...(opts.progress !== undefined ? { progress: opts.progress } : {}),
    ...(opts.quantization !== undefined ? { quantization: opts.quantization } : {}),
  });
  const { model } = opened;
  try {
    const layers = opts.adapter ? applyAdapter(opened, opts.adapter).layers
      : opts.lora
        ? injectLora(model.linears, opts.lora.config, opts.lora.seed, { otherNames: model.otherParams.keys(), ...(opts.lora.initial ? { initial: opts.lora.initial } : {}) })
        : [];
    const engine = new TfjsEngine(model, layers, opts.adamw, checkpointing, `tfjs ${opened.backend}`);
    return {
      name: opened.name, folder: opened.folder, config: opened.config, engine, engineKind: 'tfjs', tokenizer: opened.tokenizer,
      adaptedModules: layers.map((l) => l.path), loadSeconds: opened.loadSeconds, tfjsModel: model,
      dispose: () => {
        engine.dispose();
        model.dispose();
        tf.disposeVariables();
      },
    };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
