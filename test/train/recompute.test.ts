import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { adapterVariables } from '../../src/lora/adapter-files.js';
import { injectLora, setLoraTraining } from '../../src/lora/lora-linear.js';
import { readModelConfig } from '../../src/models/config.js';
import { buildModel } from '../../src/models/load.js';
import type { MicroBatch } from '../../src/engine/engine.js';
import { groupByBlock, microBatchGradients } from '../../src/runtime/tfjs-step-gradients.js';
import { useBackend } from '../helpers/backend.js';
import { sharedPath } from '../helpers/shared.js';

const fixtures = ['tiny-rwkv', 'tiny-neox-parallel'].map((f) => sharedPath('fixtures', f));

describe.skipIf(fixtures.some((f) => !f.present))('gradient checkpointing (per-block recomputation)', () => {
  beforeAll(async () => { await useBackend(); });

  for (const fixture of fixtures) {
    it(`gives the same loss and LoRA gradients as one tape on ${path.basename(fixture.path)}`, () => {
      const config = readModelConfig(path.join(fixture.path, 'config.json'));
      const source = SafetensorsFile.open(path.join(fixture.path, 'model.safetensors'));
      const model = buildModel(config, source);
      source.close();
      const targets = config.model_type === 'rwkv' ? ['key', 'value', 'receptance', 'output'] : ['query_key_value', 'dense'];
      const layers = injectLora(model.linears, { r: 4, alpha: 8, dropout: 0.2, targetModules: targets, useRslora: false, bias: 'none', fanInFanOut: false }, 3);
      // B starts at 0 in LoRA; make it nonzero so A gets a gradient too
      layers.forEach((l, i) => l.loraB.assign(tf.randomNormal(l.loraB.shape, 0, 0.1, 'float32', 100 + i)));
      const variables = adapterVariables(layers);
      const T = 12;
      const batch: MicroBatch = {
        rows: 2, length: T,
        input: Int32Array.from({ length: 2 * T }, (_, i) => (i * 7919) % 50000),
        target: Int32Array.from({ length: 2 * T }, (_, i) => (i * 104729 + 3) % 50000),
        weight: Uint8Array.from({ length: 2 * T }, (_, i) => (i % 5 === 0 ? 0 : 1)),
      };
      const run = (recompute: boolean) => {
        setLoraTraining(layers, true, 17);
        const r = microBatchGradients(model, groupByBlock(layers), variables, batch, 19, recompute);
        setLoraTraining(layers, false);
        return r;
      };
      const before = tf.memory().numTensors;
      const plain = run(false);
      const afterPlain = tf.memory().numTensors;
      const recomputed = run(true);
      // each run leaves exactly its gradients alive
      expect(afterPlain - before).toBe(variables.size);
      expect(tf.memory().numTensors - afterPlain).toBe(variables.size);
      expect(Math.abs(plain.loss - recomputed.loss)).toBeLessThan(1e-6 * Math.abs(plain.loss));
      expect([...recomputed.grads.keys()].sort()).toEqual([...variables.keys()].sort());
      for (const [name, g] of plain.grads) {
        const r = recomputed.grads.get(name)!;
        const [scale, diff] = tf.tidy(() => [tf.max(tf.abs(g)).dataSync()[0]!, tf.max(tf.abs(tf.sub(g, r))).dataSync()[0]!]);
        expect(scale, `${name} has a gradient`).toBeGreaterThan(0);
        expect(diff! / Math.max(1e-3, scale!), name).toBeLessThan(1e-4);
      }
      for (const g of [...plain.grads.values(), ...recomputed.grads.values()]) g.dispose();
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });
  }
});
