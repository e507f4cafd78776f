import * as tf from '@tensorflow/tfjs-core';
import type { MicroBatch } from '../engine/engine.js';
import type { LoraLinear } from '../lora/lora-linear.js';
import type { BlockwiseCausalLM } from '../models/model.js';
import { sequenceLoss } from '../models/loss.js';


/** The trainable LoRA layers grouped by the block that holds them, and the rest (e.g. the head). */
export interface TrainableGroups {
  readonly byBlock: ReadonlyMap<number, readonly LoraLinear[]>;
  readonly outside: readonly LoraLinear[];
}

const BLOCK_INDEX = /^(?:rwkv\.blocks|gpt_neox\.layers)\.(\d+)\./;

export function groupByBlock(layers: readonly LoraLinear[]): TrainableGroups {
  const byBlock = new Map<number, LoraLinear[]>();
  const outside: LoraLinear[] = [];
  for (const l of layers) {
    const m = BLOCK_INDEX.exec(l.path);
    if (m) {
      const i = Number(m[1]);
      byBlock.set(i, [...(byBlock.get(i) ?? []), l]);
    } else {
      outside.push(l);
    }
  }
  return { byBlock, outside };
}

export interface MicroBatchResult {
  /** sum over positions of weight * nll, divided by the normalizer */
  readonly loss: number;
  /** gradient per variable name (A/B of each layer) of that loss */
  readonly grads: Map<string, tf.Tensor>;
}

function lossOf(model: BlockwiseCausalLM, hidden: tf.Tensor3D, batch: MicroBatch, normalizer: number): tf.Scalar {
  const h = tf.reshape(hidden, [batch.rows * batch.length, model.hiddenSize]) as tf.Tensor2D;
  return sequenceLoss(model, h, batch.target, Float32Array.from(batch.weight), normalizer);
}

/**
 * Loss and gradients of one micro-batch. With `recompute` (gradient checkpointing) only the input of
 * each block is kept in the forward pass; backward re-runs one block at a time, from the last to the
 * first, and differentiates it alone. Without it, one tape over the whole pass keeps every activation.
 */
export function microBatchGradients(
  model: BlockwiseCausalLM, groups: TrainableGroups, variables: ReadonlyMap<string, tf.Variable>,
  batch: MicroBatch, normalizer: number, recompute: boolean,
): MicroBatchResult {
  const ids = tf.tensor2d(batch.input, [batch.rows, batch.length], 'int32');
  try {
    if (!recompute) {
      const names = [...variables.keys()];
      const { value, grads } = tf.variableGrads(() => lossOf(model, model.hidden(ids), batch, normalizer), [...variables.values()]);
      const loss = value.dataSync()[0]!;
      value.dispose();
      return { loss, grads: new Map(names.map((n) => [n, grads[variables.get(n)!.name]!])) };
    }
    return recomputedGradients(model, groups, variables, ids, batch, normalizer);
  } finally {
    ids.dispose();
  }
}

function recomputedGradients(
  model: BlockwiseCausalLM, groups: TrainableGroups, variables: ReadonlyMap<string, tf.Variable>,
  ids: tf.Tensor2D, batch: MicroBatch, normalizer: number,
): MicroBatchResult {
  const nameOf = new Map([...variables].map(([n, v]) => [v.id, n]));
  const grads = new Map<string, tf.Tensor>();
  const engine = tf.engine();
  const inputs: tf.Tensor3D[] = [model.embed(ids)];
  const cursors: number[][] = [];
  try {
    for (let i = 0; i < model.numLayers; i++) {
      cursors.push((groups.byBlock.get(i) ?? []).map((l) => l.dropoutCursor));
      inputs.push(model.block(i, inputs[i]!));
    }
    const top = inputs[model.numLayers]!;
    const headVars = groups.outside.flatMap((l) => l.trainableVariables());
    const head = engine.gradients(() => lossOf(model, model.finalNorm(top), batch, normalizer), [top, ...headVars]);
    const loss = head.value.dataSync()[0]!;
    head.value.dispose();
    headVars.forEach((v, k) => grads.set(nameOf.get(v.id)!, head.grads[k + 1]!));
    let dy = head.grads[0]!;
    for (let i = model.numLayers - 1; i >= 0; i--) {
      const layers = groups.byBlock.get(i) ?? [];
      const vars = layers.flatMap((l) => l.trainableVariables());
      const xs = i > 0 ? [inputs[i]!, ...vars] : vars;
      if (xs.length === 0) {
        dy.dispose();
        break;
      }
      layers.forEach((l, k) => { l.dropoutCursor = cursors[i]![k]!; });
      const r = engine.gradients(() => model.block(i, inputs[i]!), xs, dy);
      r.value.dispose();
      dy.dispose();
      const offset = i > 0 ? 1 : 0;
      vars.forEach((v, k) => grads.set(nameOf.get(v.id)!, r.grads[k + offset]!));
      if (i === 0) break;
      dy = r.grads[0]!;
    }
    return { loss, grads };
  } finally {
    for (const t of inputs) t.dispose();
  }
}
