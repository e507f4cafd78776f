import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend.js';
import type { BlockwiseCausalLM } from '../../src/models/model.js';
import { useBackend } from '../helpers/backend.js';
import {
  MODEL_FIXTURES, fixturePresent, idsTensor, loadFixtureModel, maxAbsDiff, meanNextTokenLoss, readReference, readReferenceLogits, rowsAt,
} from './fixtures.js';

const BACKENDS: BackendName[] = ['wasm', 'cpu'];

/** Stored logits are float64 results rounded to float32; a correct float32 port lands within ~1e-5. */
const LOGIT_TOL = 1e-4;
const LOSS_REL_TOL = 1e-5;

function lossOf(model: BlockwiseCausalLM, ids: readonly number[]): number {
  return tf.tidy(() => {
    const input = idsTensor([ids]);
    return meanNextTokenLoss(model.forward(input), input).dataSync()[0]!;
  });
}

/** Logits [T * V] of ids fed through step(): first `firstChunk` tokens at once (rows before its last stay 0), then one at a time. */
function stepwiseLogits(model: BlockwiseCausalLM, ids: readonly number[], firstChunk: number): Float32Array {
  const V = model.vocabSize;
  const out = new Float32Array(ids.length * V);
  const state = model.initState(1);
  try {
    let t = 0;
    while (t < ids.length) {
      const n = t === 0 ? firstChunk : 1;
      const input = idsTensor([ids.slice(t, t + n)]);
      const { logits } = model.step(input, state);
      out.set(logits.dataSync(), (t + n - 1) * V);
      tf.dispose([input, logits]);
      t += n;
    }
    expect(state.position).toBe(ids.length);
  } finally {
    state.dispose();
  }
  return out;
}

/** The checks of one reference fixture (../shared/fixtures/<name>) on wasm and cpu; skipped when it is missing. */
export function describeReferenceFixture(name: (typeof MODEL_FIXTURES)[number]): void {
  const present = fixturePresent(name);
  describe.skipIf(!present)(`${name} against the float64 reference`, () => {
    const texts = present ? readReference(name).texts : [];

    for (const backend of BACKENDS) {
      describe(`on ${backend}`, () => {
        let model: BlockwiseCausalLM;

        beforeAll(async () => {
          await useBackend(backend);
          model = loadFixtureModel(name);
        });
        afterAll(() => model?.dispose());

        it('loads without warnings and with every linear in the map', () => {
          expect(model.warnings).toEqual([]);
          const paths = [...model.linears.keys()];
          expect(paths[paths.length - 1]).toBe(model.architecture === 'rwkv' ? 'head' : 'embed_out');
          expect(paths.length).toBe(model.architecture === 'rwkv' ? 7 * model.numLayers + 1 : 4 * model.numLayers + 1);
        });

        it.each(texts.map((t, i) => [i, t] as const))('text %i: logits at the stored positions and the loss', (i, text) => {
          const ref = readReferenceLogits(name, text);
          const { first3, last3 } = tf.tidy(() => {
            const logits = model.forward(idsTensor([text.ids]));
            expect(logits.shape).toEqual([1, text.ids.length, model.vocabSize]);
            return { first3: rowsAt(logits, text.logits_positions.first3), last3: rowsAt(logits, text.logits_positions.last3) };
          });
          expect(maxAbsDiff(first3, ref.first3), `text${i}.first3`).toBeLessThan(LOGIT_TOL);
          expect(maxAbsDiff(last3, ref.last3), `text${i}.last3`).toBeLessThan(LOGIT_TOL);
          const loss = lossOf(model, text.ids);
          expect(Math.abs(loss - text.loss) / text.loss).toBeLessThan(LOSS_REL_TOL);
        });

        it('residual stream after the embedding, every layer and the final norm', () => {
          const text = texts[0]!;
          const stages = Object.entries(text.hidden_states_f64).filter(([key]) => key !== 'after_pre_ln');
          expect(stages.length).toBe(model.numLayers + 2);
          tf.tidy(() => {
            let x = model.embed(idsTensor([text.ids]));
            const got = [x];
            for (let i = 0; i < model.numLayers; i++) got.push((x = model.block(i, x)));
            got.push(model.finalNorm(x));
            stages.forEach(([key, want], i) => {
              expect(maxAbsDiff(got[i]!.dataSync(), want.flat()), key).toBeLessThan(LOGIT_TOL);
            });
          });
        });

        it('step() over a prompt and then token by token gives the full-forward logits', () => {
          // the shortest text (24 tokens: a prompt of 5, then 19 single steps); each tfjs step is a
          // whole dispatch of the model, and the longest text took 4-5 s per backend
          const ids = texts.reduce((a, b) => (b.ids.length < a.ids.length ? b : a)).ids;
          const full = tf.tidy(() => model.forward(idsTensor([ids])).dataSync() as Float32Array);
          const V = model.vocabSize;
          const stepped = stepwiseLogits(model, ids, 5);
          for (let t = 4; t < ids.length; t++) {
            expect(maxAbsDiff(stepped.subarray(t * V, (t + 1) * V), full.subarray(t * V, (t + 1) * V)), `position ${t}`).toBeLessThan(1e-4);
          }
        });

        it('a batch of two equals each row alone, and the batch loss is the mean', () => {
          const T = Math.min(...texts.map((t) => t.ids.length));
          const rows = [texts[0]!.ids.slice(0, T), texts[1]!.ids.slice(0, T)];
          tf.tidy(() => {
            const batch = model.forward(idsTensor(rows));
            rows.forEach((row, b) => {
              const alone = model.forward(idsTensor([row]));
              const V = model.vocabSize;
              expect(maxAbsDiff(tf.slice(batch, [b, 0, 0], [1, T, V]).dataSync(), alone.dataSync())).toBeLessThan(1e-5);
            });
            const batchLoss = meanNextTokenLoss(batch, idsTensor(rows)).dataSync()[0]!;
            expect(batchLoss).toBeCloseTo((lossOf(model, rows[0]!) + lossOf(model, rows[1]!)) / 2, 5);
          });
        });

        it('backward runs on this backend and agrees with a finite difference', () => {
          const ids = texts[0]!.ids.slice(0, 12);
          const input = idsTensor([ids]);
          const x0 = model.embed(input);
          const direction = tf.randomNormal(x0.shape, 0, 1, 'float32', 7);
          const loss = (x: tf.Tensor): tf.Scalar => {
            let h = x as tf.Tensor3D;
            for (let i = 0; i < model.numLayers; i++) h = model.block(i, h);
            return meanNextTokenLoss(model.logits(model.finalNorm(h)) as tf.Tensor3D, input);
          };
          const before = tf.memory().numTensors;
          const analytic = tf.tidy(() => tf.sum(tf.mul(tf.grad(loss)(x0), direction)).dataSync()[0]!);
          expect(tf.memory().numTensors).toBe(before);
          const eps = 1e-2;
          const numeric = tf.tidy(() => (loss(tf.add(x0, tf.mul(direction, eps))).dataSync()[0]! - loss(tf.sub(x0, tf.mul(direction, eps))).dataSync()[0]!) / (2 * eps));
          expect(Number.isFinite(analytic)).toBe(true);
          expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
          tf.dispose([input, x0, direction]);
        });

        it('forward leaves no tensors behind', () => {
          const input = idsTensor([texts[0]!.ids]);
          const before = tf.memory().numTensors;
          model.forward(input).dispose();
          const state = model.initState(1);
          model.step(input, state).logits.dispose();
          state.dispose();
          expect(tf.memory().numTensors).toBe(before);
          input.dispose();
        });
      });
    }
  });
}
