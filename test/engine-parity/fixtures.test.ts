/**
 * The native engine's loss against the tfjs engine (the reference) and the fixtures' float64
 * numbers on every model fixture in ../shared/fixtures: the whole loss of each text, and the loss of
 * single positions (a weight that selects one position) across rows of a batch, with float and NF4
 * bases, with and without LoRA adapters.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MicroBatch } from '../../src/engine/engine.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import type { LoraConfig } from '../../src/lora/config.js';
import { readModelConfig } from '../../src/models/config.js';
import { useBackend } from '../helpers/backend.js';
import { nativeMissing } from '../helpers/native.js';
import { MODEL_FIXTURES, fixtureDir, fixturePresent, readReference, type ReferenceText } from '../models/fixtures.js';
import { onlyPosition, openNative, openTfjs, randomInitial, relErr, trainStep, updateError, type Opened, type ParitySetup } from './engines.js';

const LOSS_REL = 1e-5;

interface Text extends ReferenceText {
  readonly nll_per_position: number[];
}

/** One row per text, all cut to the shortest: input ids[0..T-1), target ids[1..T). */
function textsBatch(texts: readonly Text[]): MicroBatch {
  const T = Math.min(...texts.map((t) => t.ids.length)) - 1;
  const rows = texts.length;
  const input = new Int32Array(rows * T), target = new Int32Array(rows * T);
  texts.forEach((t, b) => {
    input.set(t.ids.slice(0, T), b * T);
    target.set(t.ids.slice(1, T + 1), b * T);
  });
  return { rows, length: T, input, target, weight: new Uint8Array(rows * T).fill(1) };
}

function oneText(t: Text): MicroBatch {
  const T = t.ids.length - 1;
  return { rows: 1, length: T, input: Int32Array.from(t.ids.slice(0, T)), target: Int32Array.from(t.ids.slice(1)), weight: new Uint8Array(T).fill(1) };
}

const ALL_LINEARS: Record<string, string[]> = {
  rwkv: ['key', 'value', 'receptance', 'output'],
  gpt_neox: ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h'],
};

const worst = new Map<string, number>();
function record(what: string, err: number): void {
  worst.set(what, Math.max(worst.get(what) ?? 0, err));
}
afterAll(() => {
  for (const [k, v] of worst) process.stderr.write(`engine parity (fixtures) worst ${k}: ${v.toExponential(2)}\n`);
});

for (const name of MODEL_FIXTURES) {
  const present = fixturePresent(name);
  describe.skipIf(!present || nativeMissing)(`native vs tfjs engine on ${name}`, () => {
    const dir = fixtureDir(name);
    const texts = present ? (readReference(name).texts as Text[]) : [];
    const config = present ? readModelConfig(path.join(dir, 'config.json')) : undefined;
    const source = () => SafetensorsFile.open(path.join(dir, 'model.safetensors'));
    beforeAll(async () => { await useBackend('wasm'); });

    const cases: { label: string; setup: () => ParitySetup; reference: boolean; positions: boolean; train?: boolean }[] = [
      { label: 'float base', reference: true, positions: true, setup: () => ({ config: config!, source, bits: 16 }) },
      { label: 'NF4 base', reference: false, positions: false, setup: () => ({ config: config!, source, bits: 4 }) },
      {
        label: 'NF4 base with LoRA on every linear', reference: false, positions: true, train: true, setup: () => {
          const lora: LoraConfig = { r: 4, alpha: 8, dropout: 0.1, targetModules: ALL_LINEARS[config!.model_type]!, useRslora: false, bias: 'none', fanInFanOut: false };
          // AdamW eps 1: the first update is -g / (|g| + 1), a monotone function of the gradient (random-shapes.test.ts)
          return {
            config: config!, source, bits: 4, lora: { config: lora, seed: 11, initial: randomInitial(config!, lora, 5) },
            adamw: { beta1: 0.9, beta2: 0.999, epsilon: 1, weightDecay: 0 },
          };
        },
      },
    ];

    for (const c of cases) {
      describe(c.label, () => {
        let native: Opened, tfjs: Opened;
        beforeAll(() => {
          const s = c.setup();
          native = openNative(s);
          tfjs = openTfjs(s);
        });
        afterAll(() => {
          native?.dispose();
          tfjs?.dispose();
        });

        it('the loss of each text', () => {
          for (const t of texts) {
            const batch = oneText(t);
            const n = native.engine.lossSum(batch), r = tfjs.engine.lossSum(batch);
            expect(Number.isFinite(n)).toBe(true);
            record(`${c.label} text loss vs tfjs`, relErr(n, r));
            expect(relErr(n, r), `${name} ${t.ids.length} ids: native ${n} tfjs ${r}`).toBeLessThan(LOSS_REL);
            if (c.reference) {
              const mean = n / batch.length;
              record('float text loss vs float64 reference', relErr(mean, t.loss));
              expect(relErr(mean, t.loss), `native ${mean} reference ${t.loss}`).toBeLessThan(LOSS_REL);
              expect(relErr(r / batch.length, t.loss), 'tfjs vs reference').toBeLessThan(LOSS_REL);
            }
          }
        });

        if (c.positions) it('the loss of single positions across the rows of one batch', () => {
          const batch = textsBatch(texts);
          const T = batch.length;
          const positions = [0, Math.floor(T / 2), T - 1];
          let total = 0;
          for (let b = 0; b < batch.rows; b++) {
            for (const t of positions) {
              const single = onlyPosition(batch, b * T + t);
              const n = native.engine.lossSum(single), r = tfjs.engine.lossSum(single);
              total += n;
              record(`${c.label} position loss vs tfjs`, relErr(n, r));
              expect(relErr(n, r), `row ${b} position ${t}: native ${n} tfjs ${r}`).toBeLessThan(LOSS_REL);
              if (c.reference) {
                const want = texts[b]!.nll_per_position[t]!;
                record('float position loss vs float64 reference', relErr(n, want));
                expect(relErr(n, want), `row ${b} position ${t}: native ${n} reference ${want}`).toBeLessThan(LOSS_REL);
              }
            }
          }
          // the weights are the only thing that selects: the whole batch is the sum of its positions
          const all = native.engine.lossSum(batch);
          const selected: MicroBatch = { ...batch, weight: Uint8Array.from({ length: batch.rows * T }, (_, p) => (positions.includes(p % T) ? 1 : 0)) };
          expect(relErr(native.engine.lossSum(selected), total)).toBeLessThan(LOSS_REL);
          expect(relErr(all, tfjs.engine.lossSum(batch))).toBeLessThan(LOSS_REL);
        });

        // last: it moves the adapters
        if (c.train) it('one LoRA training step with dropout: loss, gradient norm and every adapter update', () => {
          const batch = textsBatch(texts);
          const n = batch.rows * batch.length;
          const r = trainStep(native, batch, n, 3, 1), t = trainStep(tfjs, batch, n, 3, 1);
          // dropout 0.1 is on (the same masks on both engines)
          expect(Math.abs(r.loss - r.evalLoss / n)).toBeGreaterThan(1e-4 * r.loss);
          record('training loss vs tfjs', relErr(r.loss, t.loss));
          expect(relErr(r.loss, t.loss), `accumulate native ${r.loss} tfjs ${t.loss}`).toBeLessThan(LOSS_REL);
          record('grad norm vs tfjs', relErr(r.norm, t.norm));
          expect(relErr(r.norm, t.norm), `grad norm native ${r.norm} tfjs ${t.norm}`).toBeLessThan(1e-4);
          for (const [key, want] of t.delta) {
            const { err, scale } = updateError(r.delta.get(key)!, want);
            expect(scale, `${key} moves`).toBeGreaterThan(0);
            const floor = 2 * 2 ** -23 * t.magnitude.get(key)! / scale;
            record('adapter update vs tfjs (per tensor)', err);
            expect(err, `${key} (float32 floor ${floor.toExponential(1)})`).toBeLessThan(1e-4 + floor);
          }
        });
      });
    }
  });
}
