import { describe, expect, it } from 'vitest';
import type { TrainConfig } from '../../src/config/index.js';
import type { ModelConfig } from '../../src/models/config.js';
import { withCheckpointingIfNeeded } from '../../src/train/run.js';

const model = { model_type: 'rwkv', hidden_size: 768, num_hidden_layers: 12 } as ModelConfig;
const config = { training: { batch_size: 8, gradient_checkpointing: false }, data: { block_size: 512 } } as unknown as TrainConfig;

describe('gradient checkpointing on wasm', () => {
  it('turns on when a micro-batch tape would not fit the heap, and says so', () => {
    const logs: string[] = [];
    const c = withCheckpointingIfNeeded(config, 'wasm', (m) => logs.push(m), model, 1000);
    expect(c.training.gradient_checkpointing).toBe(true);
    expect(logs[0]).toMatch(/gradient checkpointing: turned on/);
  });

  it('sizes the micro-batch by the blocks there are, not a batch_size larger than the data', () => {
    const logs: string[] = [];
    const c = withCheckpointingIfNeeded(config, 'wasm', (m) => logs.push(m), model, 1);
    expect(c.training.gradient_checkpointing).toBe(false);
    expect(logs).toEqual([]);
  });

  it('leaves other backends alone', () => {
    expect(withCheckpointingIfNeeded(config, 'tensorflow', () => {}, model, 1000)).toBe(config);
  });
});
