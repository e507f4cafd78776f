/**
 * The native engine's adapter and AdamW state cross the Engine contract exactly: what adapterTensors
 * and optimizerState give, loadAdapter and loadOptimizerState restore bit for bit into a fresh engine,
 * which then takes the same next step as the engine it was copied from; the state also moves to and
 * from the tfjs engine. Bad state is refused with an InputError that names the key.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { MicroBatch, TrainEngine } from '../../src/engine/engine.js';
import { InputError } from '../../src/io/errors.js';
import type { LoraConfig } from '../../src/lora/config.js';
import { useBackend } from '../helpers/backend.js';
import { nativeMissing } from '../helpers/native.js';
import { ScaledRandomSource, configOf, openNative, openTfjs, randomBatch, relErr, type Opened, type ParitySetup } from './engines.js';

const MODELS: Record<string, Record<string, unknown>> = {
  rwkv: {
    model_type: 'rwkv', vocab_size: 97, hidden_size: 40, attention_hidden_size: 40, intermediate_size: 72,
    num_hidden_layers: 2, layer_norm_epsilon: 1e-5, rescale_every: 0, context_length: 64,
  },
  gpt_neox: {
    model_type: 'gpt_neox', vocab_size: 97, hidden_size: 24, num_attention_heads: 3, intermediate_size: 56, num_hidden_layers: 2,
    hidden_act: 'gelu', rotary_pct: 0.25, max_position_embeddings: 64, use_parallel_residual: true,
  },
};
const TARGETS: Record<string, string[]> = { rwkv: ['key', 'value', 'receptance', 'output'], gpt_neox: ['query_key_value', 'dense'] };

function trainSteps(e: TrainEngine, batches: readonly MicroBatch[], firstMicroStep: number): { losses: number[]; norms: number[] } {
  const losses: number[] = [], norms: number[] = [];
  batches.forEach((b, k) => {
    const n = b.weight.reduce((s, w) => s + w, 0);
    losses.push(e.accumulate(b, n, firstMicroStep + k));
    norms.push(e.step(3e-3, 1));
  });
  return { losses, norms };
}

function adapterMap(e: TrainEngine): Map<string, Float32Array> {
  return new Map(e.adapterTensors().map((t) => [t.name, t.values]));
}

function expectSameState(a: TrainEngine, b: TrainEngine): void {
  const wa = adapterMap(a), wb = adapterMap(b);
  expect([...wb.keys()]).toEqual([...wa.keys()]);
  for (const [k, v] of wa) expect(Buffer.from(wb.get(k)!.buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
  const oa = a.optimizerState(), ob = b.optimizerState();
  expect(ob.step).toBe(oa.step);
  for (const [k, s] of oa.slots) {
    const t = ob.slots.get(k)!;
    expect(Buffer.from(t.expAvg.buffer).equals(Buffer.from(s.expAvg.buffer)), `${k} exp_avg`).toBe(true);
    expect(Buffer.from(t.expAvgSq.buffer).equals(Buffer.from(s.expAvgSq.buffer)), `${k} exp_avg_sq`).toBe(true);
  }
}

function copyState(from: TrainEngine, to: TrainEngine): void {
  to.loadAdapter(adapterMap(from), 'test state');
  const o = from.optimizerState();
  to.loadOptimizerState(o.slots, o.step);
}

function caught(f: () => void): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe.skipIf(nativeMissing)('native engine state round trip', () => {
  beforeAll(async () => { await useBackend('wasm'); });

  for (const [arch, json] of Object.entries(MODELS)) {
    describe(arch, () => {
      const config = configOf(json);
      const lora: LoraConfig = { r: 4, alpha: 8, dropout: 0.1, targetModules: TARGETS[arch]!, useRslora: false, bias: 'none', fanInFanOut: false };
      const setup: ParitySetup = { config, source: () => new ScaledRandomSource(json, 3), bits: 4, lora: { config: lora, seed: 8 } };
      const batches = [0, 1, 2, 3].map((k) => randomBatch(2, 9, 97, 100 + k));

      it('adapterTensors/optimizerState restore exactly, and the restored engine takes the same next steps', () => {
        const a = openNative(setup), b = openNative(setup, 'selective');
        try {
          trainSteps(a.engine, batches.slice(0, 2), 0);
          // b differs (fresh B = 0, no moments) until the state is copied
          expect(adapterMap(b.engine).get(a.engine.adapterNames[1]!)!.some((v) => v !== 0)).toBe(false);
          copyState(a.engine, b.engine);
          expectSameState(a.engine, b.engine);
          expect(a.engine.optimizerState().step).toBe(2);
          const ra = trainSteps(a.engine, batches.slice(2), 2), rb = trainSteps(b.engine, batches.slice(2), 2);
          expect(rb).toEqual(ra);
          expectSameState(a.engine, b.engine);
        } finally {
          a.dispose();
          b.dispose();
        }
      });

      it('the state moves between the native and the tfjs engine', () => {
        const straight = openNative(setup), native = openNative(setup);
        let tfjs: Opened | undefined;
        try {
          const want = trainSteps(straight.engine, batches, 0);
          // two steps on native, two on tfjs, then back to native: the state round-trips through tfjs
          const first = trainSteps(native.engine, batches.slice(0, 2), 0);
          tfjs = openTfjs(setup);
          copyState(native.engine, tfjs.engine);
          expectSameState(native.engine, tfjs.engine);
          const second = trainSteps(tfjs.engine, batches.slice(2), 2);
          const got = [...first.losses, ...second.losses];
          got.forEach((l, i) => expect(relErr(l, want.losses[i]!), `step ${i + 1}`).toBeLessThan(1e-5));
          const worst = Math.max(...got.map((l, i) => relErr(l, want.losses[i]!)));
          process.stderr.write(`engine parity (state) ${arch}: native 2 + tfjs 2 steps vs native 4, worst loss ${worst.toExponential(2)}\n`);
          const back = openNative(setup);
          try {
            copyState(tfjs.engine, back.engine);
            expectSameState(tfjs.engine, back.engine);
          } finally {
            back.dispose();
          }
        } finally {
          straight.dispose();
          native.dispose();
          tfjs?.dispose();
        }
      });

      it('refuses a missing key or a wrong size with an InputError naming the key', () => {
        const e = openNative(setup);
        try {
          const good = adapterMap(e.engine);
          const [firstKey, secondKey] = e.engine.adapterNames as [string, string];
          const missing = new Map(good);
          missing.delete(secondKey);
          let err = caught(() => e.engine.loadAdapter(missing, 'ck/adapter_model.safetensors'));
          expect(err).toBeInstanceOf(InputError);
          expect(err.message).toContain(secondKey);
          expect(err.message).toContain('ck/adapter_model.safetensors');
          const short = new Map(good).set(firstKey, good.get(firstKey)!.subarray(1));
          err = caught(() => e.engine.loadAdapter(short, 'ck'));
          expect(err).toBeInstanceOf(InputError);
          expect(err.message).toContain(firstKey);
          // nothing was written by the refused loads
          expect(adapterMap(e.engine)).toEqual(good);

          const { slots } = e.engine.optimizerState();
          const noSlot = new Map(slots);
          noSlot.delete(secondKey);
          err = caught(() => e.engine.loadOptimizerState(noSlot, 3));
          expect(err).toBeInstanceOf(InputError);
          expect(err.message).toContain(secondKey);
          const s = slots.get(firstKey)!;
          const wrong = new Map(slots).set(firstKey, { expAvg: s.expAvg, expAvgSq: new Float32Array(s.expAvgSq.length + 1) });
          err = caught(() => e.engine.loadOptimizerState(wrong, 3));
          expect(err).toBeInstanceOf(InputError);
          expect(err.message).toContain(firstKey);
          expect(e.engine.optimizerState().step).toBe(0);
        } finally {
          e.dispose();
        }
      });
    });
  }
});
