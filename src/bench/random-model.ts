import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomic } from '../io/atomic.js';
import { fromFloat32, numel } from '../io/dtypes.js';
import { makeFolderSync } from '../io/make-folder.js';
import { writeShardedSafetensors, type TensorToWrite } from '../io/safetensors-writer.js';
import { hashString, mixSeed, uniformValues } from '../random/rng.js';
import { parseModelConfig } from '../models/config.js';
import { WEIGHT_NAMES } from '../models/weight-names.js';
import { TensorMap, type TensorInfo } from '../io/tensor-source.js';

type Init = { kind: 'normal'; std: number } | { kind: 'const'; value: number } | { kind: 'uniform'; lo: number; hi: number };

interface TensorPlan {
  readonly name: string;
  readonly shape: number[];
  readonly init: Init;
}

const normal = (std: number): Init => ({ kind: 'normal', std });
const constant = (value: number): Init => ({ kind: 'const', value });

/** Every tensor of a checkpoint for `config` (HF names), with an initialisation that keeps activations sane. */
export function checkpointPlan(configJson: Record<string, unknown>): TensorPlan[] {
  const config = parseModelConfig(JSON.stringify(configJson), 'config.json');
  const C = config.hidden_size;
  const V = config.vocab_size;
  const names = WEIGHT_NAMES[config.model_type];
  const out: TensorPlan[] = [];
  const ln = (prefix: string) => {
    out.push({ name: `${prefix}.weight`, shape: [C], init: constant(1) }, { name: `${prefix}.bias`, shape: [C], init: constant(0) });
  };
  if (config.model_type === 'rwkv') {
    const A = config.attention_hidden_size;
    const F = config.intermediate_size;
    out.push({ name: names.embedding, shape: [V, C], init: normal(0.02) });
    for (let i = 0; i < config.num_hidden_layers; i++) {
      const b = `rwkv.blocks.${i}`;
      if (i === 0) ln(`${b}.pre_ln`);
      ln(`${b}.ln1`);
      ln(`${b}.ln2`);
      out.push(
        { name: `${b}.attention.time_decay`, shape: [A], init: { kind: 'uniform', lo: -5, hi: 1 } },
        { name: `${b}.attention.time_first`, shape: [A], init: { kind: 'uniform', lo: -1, hi: 1 } },
        { name: `${b}.attention.time_mix_key`, shape: [1, 1, C], init: { kind: 'uniform', lo: 0, hi: 1 } },
        { name: `${b}.attention.time_mix_value`, shape: [1, 1, C], init: { kind: 'uniform', lo: 0, hi: 1 } },
        { name: `${b}.attention.time_mix_receptance`, shape: [1, 1, C], init: { kind: 'uniform', lo: 0, hi: 1 } },
        { name: `${b}.attention.key.weight`, shape: [A, C], init: normal(0.02) },
        { name: `${b}.attention.value.weight`, shape: [A, C], init: normal(0.02) },
        { name: `${b}.attention.receptance.weight`, shape: [A, C], init: normal(0.02) },
        { name: `${b}.attention.output.weight`, shape: [C, A], init: normal(0.02) },
        { name: `${b}.feed_forward.time_mix_key`, shape: [1, 1, C], init: { kind: 'uniform', lo: 0, hi: 1 } },
        { name: `${b}.feed_forward.time_mix_receptance`, shape: [1, 1, C], init: { kind: 'uniform', lo: 0, hi: 1 } },
        { name: `${b}.feed_forward.key.weight`, shape: [F, C], init: normal(0.02) },
        { name: `${b}.feed_forward.receptance.weight`, shape: [C, C], init: normal(0.02) },
        { name: `${b}.feed_forward.value.weight`, shape: [C, F], init: normal(0.02) },
      );
    }
    ln(names.finalNorm);
    out.push({ name: `${names.head}.weight`, shape: [V, C], init: normal(0.02) });
  } else {
    const I = config.intermediate_size;
    out.push({ name: names.embedding, shape: [V, C], init: normal(0.02) });
    for (let i = 0; i < config.num_hidden_layers; i++) {
      const l = `gpt_neox.layers.${i}`;
      ln(`${l}.input_layernorm`);
      ln(`${l}.post_attention_layernorm`);
      out.push(
        { name: `${l}.attention.query_key_value.weight`, shape: [3 * C, C], init: normal(0.02) },
        { name: `${l}.attention.query_key_value.bias`, shape: [3 * C], init: constant(0) },
        { name: `${l}.attention.dense.weight`, shape: [C, C], init: normal(0.02) },
        { name: `${l}.attention.dense.bias`, shape: [C], init: constant(0) },
        { name: `${l}.mlp.dense_h_to_4h.weight`, shape: [I, C], init: normal(0.02) },
        { name: `${l}.mlp.dense_h_to_4h.bias`, shape: [I], init: constant(0) },
        { name: `${l}.mlp.dense_4h_to_h.weight`, shape: [C, I], init: normal(0.02) },
        { name: `${l}.mlp.dense_4h_to_h.bias`, shape: [C], init: constant(0) },
      );
    }
    ln(names.finalNorm);
    out.push({ name: `${names.head}.weight`, shape: [V, C], init: normal(0.02) });
  }
  return out;
}

/**
 * The tensor's values. "normal" draws uniform values of the same standard deviation: a benchmark
 * needs the scale, not the shape, and a 14B-parameter shape is made in about a minute this way
 * (Box-Muller normals took a quarter of an hour).
 */
function fill(plan: TensorPlan, seed: number): Float32Array {
  const n = numel(plan.shape);
  const init = plan.init;
  if (init.kind === 'const') return new Float32Array(n).fill(init.value);
  const [lo, hi] = init.kind === 'uniform' ? [init.lo, init.hi] : [-init.std * Math.sqrt(3), init.std * Math.sqrt(3)];
  return uniformValues(n, lo, hi, seed);
}

/**
 * A checkpoint of random weights for `configJson`, made tensor by tensor when read (nothing on disk):
 * what `ditty bench` trains on. Each tensor's values depend only on the seed and its name.
 */
export class RandomTensorSource extends TensorMap<TensorPlan & TensorInfo> {
  constructor(configJson: Record<string, unknown>, private readonly seed = 1, label = 'random weights') {
    super(label, new Map(checkpointPlan(configJson).map((p) => [p.name, { ...p, dtype: 'F32' }])));
  }

  override readFloat32(name: string): Float32Array {
    return fill(this.entry(name), mixSeed(this.seed, hashString(name)));
  }

  readBytes(name: string): Uint8Array {
    return fromFloat32(this.readFloat32(name), 'F32');
  }
}

export interface RandomModelOptions {
  readonly dtype?: 'F32' | 'F16' | 'BF16';
  readonly seed?: number;
  readonly maxShardBytes?: number;
  /** a tokenizer.json to copy into the folder */
  readonly tokenizer?: string;
}

/** Write a Hugging Face model folder with random weights for `configJson`; returns the bytes of weights. */
export async function writeRandomModel(folder: string, configJson: Record<string, unknown>, opts: RandomModelOptions = {}): Promise<number> {
  const dtype = opts.dtype ?? 'F32';
  const source = new RandomTensorSource(configJson, opts.seed ?? 1);
  const tensors: TensorToWrite[] = source.names().map((name) => ({
    name, dtype, shape: source.info(name).shape, data: () => fromFloat32(source.readFloat32(name), dtype),
  }));
  makeFolderSync(folder);
  await writeBytesAtomic(path.join(folder, 'config.json'), `${JSON.stringify({ ...configJson, torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16' }, null, 2)}\n`);
  await writeShardedSafetensors(folder, tensors, { maxShardBytes: opts.maxShardBytes ?? 2 ** 31, metadata: { format: 'pt' } });
  if (opts.tokenizer) fs.copyFileSync(opts.tokenizer, path.join(folder, 'tokenizer.json'));
  const bytesPer = dtype === 'F32' ? 4 : 2;
  return tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * bytesPer, 0);
}
