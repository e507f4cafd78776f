/**
 * The tfjs engine: today's tfjs-core models, autograd and AdamW behind the Engine contract. It is the
 * readable reference every faster engine is held to.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AdamWSettings, AdapterWeight, Checkpointing, Decoder, MicroBatch, OptimizerSlot, TrainEngine } from '../engine/engine.js';
import { InputError } from '../io/errors.js';
import { adapterTensorsOf, adapterVariables } from '../lora/adapter-files.js';
import { setLoraTraining, type LoraLinear } from '../lora/lora-linear.js';
import { sequenceLoss } from '../models/loss.js';
import type { BlockwiseCausalLM } from '../models/model.js';
import { AdamW, clipByGlobalNorm } from './tfjs-adamw.js';
import { groupByBlock, microBatchGradients, type TrainableGroups } from './tfjs-step-gradients.js';

export class TfjsEngine implements TrainEngine {
  readonly adapterNames: readonly string[];
  readonly computeDtype = 'fp32';
  private readonly variables: Map<string, tf.Variable>;
  private readonly groups: TrainableGroups;
  /** absent for an engine that scores and decodes only */
  private readonly optimizer: AdamW | undefined;
  private grads: Map<string, tf.Tensor> | undefined;

  constructor(
    readonly model: BlockwiseCausalLM, readonly layers: readonly LoraLinear[], adamw: AdamWSettings | undefined,
    private readonly checkpointing: Checkpointing, readonly description: string,
  ) {
    this.variables = adapterVariables(layers);
    this.adapterNames = [...this.variables.keys()];
    this.groups = groupByBlock(layers);
    this.optimizer = adamw ? new AdamW(this.variables, adamw) : undefined;
  }

  accumulate(batch: MicroBatch, normalizer: number, microStep: number): number {
    setLoraTraining(this.layers, true, microStep);
    try {
      // per-block recomputation is the tfjs engine's only checkpointing form
      const r = microBatchGradients(this.model, this.groups, this.variables, batch, normalizer, this.checkpointing !== 'none');
      if (!this.grads) {
        this.grads = r.grads;
      } else {
        for (const [name, g] of r.grads) {
          const sum = tf.add(this.grads.get(name)!, g);
          this.grads.get(name)!.dispose();
          g.dispose();
          this.grads.set(name, sum);
        }
      }
      return r.loss;
    } finally {
      setLoraTraining(this.layers, false);
    }
  }

  step(lr: number, maxGradNorm: number): number {
    const grads = this.grads;
    if (!grads) return 0;
    this.grads = undefined;
    try {
      const norm = clipByGlobalNorm(grads, maxGradNorm);
      if (Number.isFinite(norm)) this.trainer().step(grads, lr);
      return norm;
    } finally {
      for (const g of grads.values()) g.dispose();
    }
  }

  lossSum(batch: MicroBatch): number {
    const s = tf.tidy(() => {
      const hidden = this.model.hidden(tf.tensor2d(batch.input, [batch.rows, batch.length], 'int32'));
      const flat = tf.reshape(hidden, [batch.rows * batch.length, this.model.hiddenSize]) as tf.Tensor2D;
      return sequenceLoss(this.model, flat, batch.target, Float32Array.from(batch.weight), 1);
    });
    const value = s.dataSync()[0]!;
    s.dispose();
    return value;
  }

  decoder(): Decoder {
    const model = this.model;
    let state = model.initState(1);
    return {
      feed(ids: readonly number[]): Float32Array {
        const input = tf.tensor2d([...ids], [1, ids.length], 'int32');
        const out = model.step(input, state);
        input.dispose();
        state = out.state;
        const logits = Float32Array.from(out.logits.dataSync() as Float32Array);
        out.logits.dispose();
        return logits;
      },
      dispose(): void {
        state.dispose();
      },
    };
  }

  adapterTensors(): AdapterWeight[] {
    return adapterTensorsOf(this.layers);
  }

  loadAdapter(values: ReadonlyMap<string, Float32Array>, where: string): void {
    for (const [key, v] of this.variables) {
      const data = values.get(key);
      if (!data || data.length !== v.size) throw new InputError(`${where}: adapter tensor "${key}" is missing or has the wrong size for this LoRA config`);
      const restored = tf.tensor(data, v.shape);
      v.assign(restored);
      restored.dispose();
    }
  }

  optimizerState(): { step: number; slots: Map<string, OptimizerSlot> } {
    return { step: this.trainer().stepCount, slots: this.trainer().exportState() };
  }

  loadOptimizerState(slots: ReadonlyMap<string, OptimizerSlot>, step: number): void {
    this.trainer().importState(slots, step);
  }

  dispose(): void {
    if (this.grads) for (const g of this.grads.values()) g.dispose();
    this.grads = undefined;
    this.optimizer?.dispose();
  }

  private trainer(): AdamW {
    if (!this.optimizer) throw new Error('this engine was opened without optimizer settings: it scores and decodes, it does not train');
    return this.optimizer;
  }
}
