import type { DType } from '../../src/io/dtypes.js';
import type { TensorInfo, TensorSource } from '../../src/io/tensor-source.js';

export interface MemoryTensor {
  readonly shape: number[];
  readonly data: Float32Array;
  readonly dtype?: DType;
}

/** An in-memory TensorSource of float32 tensors (a stored dtype other than F32 is only reported). */
export class MemorySource implements TensorSource {
  readonly location = 'memory:test-checkpoint';

  constructor(readonly tensors: Map<string, MemoryTensor>) {}

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.get(name);
    return { name, dtype: t.dtype ?? 'F32', shape: t.shape };
  }

  readBytes(name: string): Uint8Array {
    const t = this.get(name);
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }

  readFloat32(name: string): Float32Array {
    return this.get(name).data.slice();
  }

  close(): void {}

  private get(name: string): MemoryTensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no tensor ${name}`);
    return t;
  }
}

/** Deterministic normal-ish values (sum of uniforms) with the given std. */
export function randomData(n: number, std: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() + next() + next() - 1.5) * 2 * std;
  return out;
}

/** Tensors named and shaped as a checkpoint needs them, filled with random values. */
export function randomCheckpoint(shapes: ReadonlyArray<[string, number[]]>, seed = 1): MemorySource {
  const map = new Map<string, MemoryTensor>();
  shapes.forEach(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    let data = randomData(n, name.includes('weight') && !name.includes('ln') && !name.includes('norm') ? 0.3 : 0.2, seed * 1000 + i);
    if (/(ln\d?|ln_out|pre_ln|layernorm|layer_norm)\.weight$/.test(name)) data = data.map((v) => 1 + v);
    if (name.endsWith('time_mix_key') || name.endsWith('time_mix_value') || name.endsWith('time_mix_receptance')) data = data.map((v) => 0.5 + v);
    map.set(name, { shape, data });
  });
  return new MemorySource(map);
}

export function rwkvShapes(C: number, A: number, F: number, V: number, layers: number): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [['rwkv.embeddings.weight', [V, C]]];
  for (let i = 0; i < layers; i++) {
    const b = `rwkv.blocks.${i}`;
    if (i === 0) out.push([`${b}.pre_ln.weight`, [C]], [`${b}.pre_ln.bias`, [C]]);
    out.push(
      [`${b}.ln1.weight`, [C]], [`${b}.ln1.bias`, [C]], [`${b}.ln2.weight`, [C]], [`${b}.ln2.bias`, [C]],
      [`${b}.attention.time_decay`, [A]], [`${b}.attention.time_first`, [A]],
      [`${b}.attention.time_mix_key`, [1, 1, C]], [`${b}.attention.time_mix_value`, [1, 1, C]], [`${b}.attention.time_mix_receptance`, [1, 1, C]],
      [`${b}.attention.key.weight`, [A, C]], [`${b}.attention.value.weight`, [A, C]], [`${b}.attention.receptance.weight`, [A, C]],
      [`${b}.attention.output.weight`, [C, A]],
      [`${b}.feed_forward.time_mix_key`, [1, 1, C]], [`${b}.feed_forward.time_mix_receptance`, [1, 1, C]],
      [`${b}.feed_forward.key.weight`, [F, C]], [`${b}.feed_forward.receptance.weight`, [C, C]], [`${b}.feed_forward.value.weight`, [C, F]],
    );
  }
  out.push(['rwkv.ln_out.weight', [C]], ['rwkv.ln_out.bias', [C]], ['head.weight', [V, C]]);
  return out;
}

export function neoxShapes(H: number, I: number, V: number, layers: number, attentionBias = true): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [['gpt_neox.embed_in.weight', [V, H]]];
  for (let i = 0; i < layers; i++) {
    const l = `gpt_neox.layers.${i}`;
    out.push(
      [`${l}.input_layernorm.weight`, [H]], [`${l}.input_layernorm.bias`, [H]],
      [`${l}.post_attention_layernorm.weight`, [H]], [`${l}.post_attention_layernorm.bias`, [H]],
      [`${l}.attention.query_key_value.weight`, [3 * H, H]], [`${l}.attention.dense.weight`, [H, H]],
      [`${l}.mlp.dense_h_to_4h.weight`, [I, H]], [`${l}.mlp.dense_h_to_4h.bias`, [I]],
      [`${l}.mlp.dense_4h_to_h.weight`, [H, I]], [`${l}.mlp.dense_4h_to_h.bias`, [H]],
    );
    if (attentionBias) out.push([`${l}.attention.query_key_value.bias`, [3 * H]], [`${l}.attention.dense.bias`, [H]]);
  }
  out.push(['gpt_neox.final_layer_norm.weight', [H]], ['gpt_neox.final_layer_norm.bias', [H]], ['embed_out.weight', [V, H]]);
  return out;
}
