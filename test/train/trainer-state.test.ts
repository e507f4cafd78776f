import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { readTrainerState, type TrainerState } from '../../src/runtime/trainer-state.js';
import { checkpointProblem } from '../../src/train/checkpoint.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-trainer-state-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const STATE: TrainerState = {
  format: 1, global_step: 2, total_steps: 10, epoch: 0.2, batcher: { epoch: 0, index: 4 }, tokens_seen: 512,
  elapsed_seconds: 3.5, seed: 42, data_fingerprint: 'abc', batch_size: 1, grad_accum: 2,
  log_history: [
    { step: 1, loss: 2.5, lr: 1e-4, grad_norm: 0.5, tokens: 256, micro_batches: 2, tokens_per_s: 100, elapsed: 1.5, epoch: 0.1 },
    { step: 2, loss: 2.25, lr: 1e-4, grad_norm: 0.4, tokens: 256, micro_batches: 2, tokens_per_s: 100, elapsed: 3.5, epoch: 0.2, val_loss: 2.4 },
  ],
  lora: { r: 8, alpha: 16, use_rslora: false, modules: ['rwkv.blocks.0.attention.key'] },
  schedule: { kind: 'constant', learning_rate: 1e-4, warmup_steps: 0, total_steps: 10 },
  rng: { seed: 42, next_micro_step: 4 },
};

function write(name: string, value: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

describe('trainer_state.json: one validator', () => {
  it('reads back what the trainer writes, a NaN loss (written as null) included', () => {
    expect(readTrainerState(write('ok.json', STATE))).toEqual(STATE);
    const nan = { ...STATE, log_history: [{ ...STATE.log_history[0]!, loss: Number.NaN }] };
    expect(readTrainerState(write('nan.json', nan)).log_history[0]!.loss).toBeNaN();
  });

  it.each([
    ['a string step', { ...STATE, global_step: '2' }, 'global_step'],
    ['a negative batch index', { ...STATE, batcher: { epoch: 0, index: -1 } }, 'batcher.index'],
    ['another format', { ...STATE, format: 2 }, 'format'],
    ['a missing fingerprint', { ...STATE, data_fingerprint: undefined }, 'data_fingerprint'],
    ['a bad log entry', { ...STATE, log_history: [STATE.log_history[0], { ...STATE.log_history[1], loss: 'high' }] }, 'log_history[1].loss'],
    ['a list', [STATE], 'the top level'],
  ])('refuses %s in one line naming the file and the field', (_, value, field) => {
    const file = write('bad.json', value);
    let error: unknown;
    try {
      readTrainerState(file);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InputError);
    const message = (error as Error).message;
    expect(message.startsWith(`${file}: ${field}: `)).toBe(true);
    expect(message).not.toContain('\n');
  });

  it('text that is not JSON is one line too', () => {
    const file = write('text.json', '{"format": 1,');
    expect(() => readTrainerState(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON`));
  });

  it('a checkpoint with a broken trainer_state.json is damaged, and says where', () => {
    const dir = path.join(tmp, 'checkpoint-2');
    fs.mkdirSync(dir);
    write(path.join('checkpoint-2', 'trainer_state.json'), { ...STATE, tokens_seen: -5 });
    expect(checkpointProblem(dir)).toMatch(/trainer_state\.json: tokens_seen: /);
  });
});
