/**
 * Quantize on load streams: a random model of the RWKV-4 169M shape loads with every block linear
 * in NF4 (JS memory, about 0.517 bytes per parameter) and tf memory holding only the head,
 * embeddings, norms and time_* parameters; the float weights of the linears are never tensors.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRandomModel } from '../../src/bench/random-model.js';
import { MODEL_SHAPES } from '../../src/bench/shapes.js';
import { Nf4Linear } from '../../src/models/nf4-linear.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { parseModelConfig } from '../../src/models/config.js';
import { DenseLinear } from '../../src/models/linear.js';
import { buildModel } from '../../src/models/load.js';
import { bitsPerParameter } from '../../src/quant/nf4.js';
import { DEFAULT_QUANTIZATION } from '../../src/quant/options.js';
import { plannedNf4Parts } from '../../src/quant/storage-report.js';
import { useBackend } from '../helpers/backend.js';

describe('quantize on load of a random rwkv-169m-shaped model', () => {
  let tmp = '';
  beforeAll(async () => {
    await useBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-stream-'));
    await writeRandomModel(tmp, MODEL_SHAPES['rwkv-169m']!, { dtype: 'BF16', seed: 3 });
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('holds the block linears in NF4 only, and tf memory = head + embeddings + norms + time_*', async () => {
    const config = parseModelConfig(fs.readFileSync(path.join(tmp, 'config.json'), 'utf8'), 'config.json');
    const source = await openCheckpoint(tmp);
    const before = tf.memory();
    const model = buildModel(config, source, { quantization: DEFAULT_QUANTIZATION });
    source.close();
    try {
      const layers = [...model.linears.values()];
      const nf4 = layers.filter((l): l is Nf4Linear => l instanceof Nf4Linear);
      expect(nf4).toHaveLength(12 * 7);
      const head = model.linears.get('head');
      expect(head).toBeInstanceOf(DenseLinear);
      const headElements = (head as DenseLinear).weight.size;
      const otherElements = [...model.otherParams.values()].reduce((s, t) => s + t.size, 0);
      const after = tf.memory();
      expect(after.numBytes - before.numBytes).toBe(4 * (headElements + otherElements));
      expect(after.numTensors - before.numTensors).toBe(1 + model.otherParams.size);
      const params = nf4.reduce((s, l) => s + l.state.n, 0);
      expect(params).toBe(12 * (4 * 768 * 768 + 2 * 768 * 3072 + 768 * 768));
      const perParam = nf4.reduce((s, l) => s + l.bytesHeld(), 0) / params;
      expect(perParam).toBeLessThanOrEqual(0.52);
      expect(perParam).toBeGreaterThan(0.5158);
      // stored bits per parameter (codes + statistics, as a checkpoint holds them): 4.127 for large linears
      const square = nf4.find((l) => l.outFeatures === 768 && l.inFeatures === 768)!;
      expect(bitsPerParameter(square.state)).toBe(4 + 8 / 64 + 32 / (64 * 256) + 32 / (768 * 768)); // + the offset
      expect(plannedNf4Parts([768, 768], 64, true).packed).toBe(square.state.packed.length);
    } finally {
      model.dispose();
    }
  });
});
