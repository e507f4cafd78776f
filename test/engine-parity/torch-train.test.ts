/**
 * Every engine against two LoRA training steps computed by PyTorch autograd and torch.optim.AdamW
 * (test/fixtures/torch-train/, written by scripts/make-torch-train-fixtures.py in float64 from a
 * forward pass written after transformers' and checked against ../shared's own float64 reference):
 * the tiny RWKV-4 and GPT-NeoX (parallel and sequential) models of ../shared/fixtures with every
 * weight rounded to bf16 (a 16-bit base, upcast as ditty upcasts a bf16 checkpoint), LoRA r 4 on
 * ditty's default targets from the fixture's initial A and B (B nonzero), dropout 0, 2 micro-batches
 * per step, clipping active on both steps, AdamW with weight decay. Per micro-batch loss, per-step
 * gradient norm, the LoRA gradients after accumulation and before clipping, and the LoRA weights
 * after each step must match.
 *
 * Gradients are internal to an engine, so they are read back through the contract: after step k the
 * first Adam moment is m_k = b1 m_{k-1} + (1 - b1) c g_k with c the clipping factor
 * max_norm / (norm + 1e-6), so g_k = (m_k - b1 m_{k-1}) / ((1 - b1) c).
 *
 * Errors are per tensor and norm-based, |x - ref|_2 / |ref|_2, at 1e-4 for losses, norms, gradients
 * and weights; the weights' error is also held to 1e-3 of the whole update |ref - initial|_2 (a
 * step moves each weight by ~lr = 1e-2, so weight decay alone, lr * wd = 1e-3 of |w|, is seen by
 * both). Adam amplifies float32 noise: it divides each gradient element by its own magnitude (plus
 * eps), so an element whose gradient is near the engine's float32 rounding noise moves by an amount
 * set by that noise. The fixture's eps (1e-4, see the script) bounds the amplification; element-wise
 * comparisons of the weights would still fail on those few elements, a norm weighs them as the few
 * of many they are. Measured worst errors go to stderr.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend.js';
import type { AdamWSettings, MicroBatch } from '../../src/engine/engine.js';
import { fromFloat32, toFloat32 } from '../../src/io/dtypes.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import type { TensorInfo, TensorSource } from '../../src/io/tensor-source.js';
import { DEFAULT_TARGET_MODULES } from '../../src/config/schema.js';
import type { LoraConfig } from '../../src/lora/config.js';
import { readModelConfig } from '../../src/models/config.js';
import { useBackend } from '../helpers/backend.js';
import { nativeMissing } from '../helpers/native.js';
import { MODEL_FIXTURES, fixtureDir, fixturePresent } from '../models/fixtures.js';
import { openNative, openTfjs, type Opened, type ParitySetup } from './engines.js';

const TOLERANCE = 1e-4;
/** the weights' error over the size of the whole update instead of the weights (see the header) */
const UPDATE_TOLERANCE = 1e-3;
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'torch-train');

interface FixtureBatch { rows: number; length: number; input: number[]; target: number[]; weight: number[] }
interface Fixture {
  base: { dtype: 'BF16'; sha256_sorted_names_and_bytes: string };
  lora: { r: number; alpha: number; dropout: number; target_modules: string[]; paths: string[] };
  adamw: { lr: number; beta1: number; beta2: number; epsilon: number; weight_decay: number };
  max_grad_norm: number;
  steps: { micro_batches: FixtureBatch[]; micro_batch_losses: number[]; loss: number; normalizer: number; grad_norm: number }[];
}

/** A checkpoint's tensors rounded to bf16, as a bf16 checkpoint presents them. */
class Bf16Source implements TensorSource {
  constructor(private readonly inner: TensorSource) {}
  get location(): string { return `${this.inner.location} (as bf16)`; }
  names(): string[] { return this.inner.names(); }
  has(name: string): boolean { return this.inner.has(name); }
  info(name: string): TensorInfo { return { ...this.inner.info(name), dtype: 'BF16' }; }
  readBytes(name: string): Uint8Array { return fromFloat32(this.inner.readFloat32(name), 'BF16'); }
  readFloat32(name: string): Float32Array { return toFloat32(this.readBytes(name), 'BF16'); }
  close(): void { this.inner.close(); }
}

const l2 = (v: ArrayLike<number>): number => { let s = 0; for (let i = 0; i < v.length; i++) s += v[i]! ** 2; return Math.sqrt(s); };
function l2Diff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}

interface EngineRun {
  losses: number[][];
  norms: number[];
  grads: Map<string, Float64Array>[];
  weights: Map<string, Float32Array>[];
}

function toBatch(b: FixtureBatch): MicroBatch {
  return { rows: b.rows, length: b.length, input: Int32Array.from(b.input), target: Int32Array.from(b.target), weight: Uint8Array.from(b.weight) };
}

function train(opened: Opened, fx: Fixture): EngineRun {
  const e = opened.engine;
  const { beta1 } = fx.adamw;
  const run: EngineRun = { losses: [], norms: [], grads: [], weights: [] };
  let previous = new Map<string, Float32Array>();
  let microStep = 0;
  for (const step of fx.steps) {
    const normalizer = step.micro_batches.reduce((n, b) => n + b.weight.reduce((s, w) => s + w, 0), 0);
    run.losses.push(step.micro_batches.map((b) => e.accumulate(toBatch(b), normalizer, microStep++)));
    const norm = e.step(fx.adamw.lr, fx.max_grad_norm);
    run.norms.push(norm);
    const clip = Math.min(1, fx.max_grad_norm / (norm + 1e-6));
    const grads = new Map<string, Float64Array>();
    const moments = e.optimizerState().slots;
    for (const [name, slot] of moments) {
      const before = previous.get(name);
      grads.set(name, Float64Array.from(slot.expAvg, (m, i) => (m - beta1 * (before?.[i] ?? 0)) / ((1 - beta1) * clip)));
    }
    previous = new Map([...moments].map(([k, s]) => [k, s.expAvg]));
    run.grads.push(grads);
    run.weights.push(new Map(e.adapterTensors().map((t) => [t.name, t.values])));
  }
  return run;
}

type EngineKind = { label: string; backend?: BackendName; native?: boolean };
const ENGINES: EngineKind[] = [
  { label: 'tfjs wasm', backend: 'wasm' },
  { label: 'tfjs js (cpu backend)', backend: 'cpu' },
  { label: 'native cpu', native: true },
];

const worst = new Map<string, number>();
function record(what: string, err: number): void {
  worst.set(what, Math.max(worst.get(what) ?? 0, err));
}
afterAll(() => {
  for (const [k, v] of worst) process.stderr.write(`torch training step, worst ${k}: ${v.toExponential(2)}\n`);
});

for (const name of MODEL_FIXTURES) {
  const present = fixturePresent(name);
  describe.skipIf(!present)(`${name}: two LoRA steps against PyTorch autograd + AdamW`, () => {
    const fx = JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;
    const dir = fixtureDir(name);
    const source = (): TensorSource => new Bf16Source(SafetensorsFile.open(path.join(dir, 'model.safetensors')));
    const config = present ? readModelConfig(path.join(dir, 'config.json')) : undefined;

    function setup(): ParitySetup {
      const ref = SafetensorsFile.open(path.join(FIXTURES, `${name}.safetensors`));
      try {
        const initial = new Map(fx.lora.paths.map((p) => [p, {
          a: ref.readFloat32(`initial/base_model.model.${p}.lora_A.weight`),
          b: ref.readFloat32(`initial/base_model.model.${p}.lora_B.weight`),
        }]));
        const lora: LoraConfig = {
          r: fx.lora.r, alpha: fx.lora.alpha, dropout: fx.lora.dropout, targetModules: DEFAULT_TARGET_MODULES[config!.model_type],
          useRslora: false, bias: 'none', fanInFanOut: false,
        };
        const adamw: AdamWSettings = { beta1: fx.adamw.beta1, beta2: fx.adamw.beta2, epsilon: fx.adamw.epsilon, weightDecay: fx.adamw.weight_decay };
        return { config: config!, source, bits: 16, lora: { config: lora, seed: 1, initial }, adamw };
      } finally {
        ref.close();
      }
    }

    it('the fixture was made with ditty\'s default targets and the same bf16 base', () => {
      expect(fx.lora.target_modules).toEqual([...DEFAULT_TARGET_MODULES[config!.model_type]]);
      const s = source();
      try {
        const h = createHash('sha256');
        for (const n of [...s.names()].sort()) h.update(n).update(s.readBytes(n));
        expect(h.digest('hex')).toBe(fx.base.sha256_sorted_names_and_bytes);
      } finally {
        s.close();
      }
      // clipping is active on both steps, and the steps move the loss
      for (const st of fx.steps) expect(st.grad_norm).toBeGreaterThan(1.5 * fx.max_grad_norm);
    });

    for (const kind of ENGINES) {
      it.skipIf(kind.native === true && nativeMissing)(`${kind.label}: losses, gradient norms, gradients and weights of both steps`, async () => {
        if (kind.backend) await useBackend(kind.backend);
        const opened = kind.native ? openNative(setup()) : openTfjs(setup());
        let run: EngineRun;
        try {
          expect([...opened.engine.adapterNames].sort()).toEqual(fx.lora.paths.flatMap((p) => ['A', 'B'].map((w) => `base_model.model.${p}.lora_${w}.weight`)).sort());
          run = train(opened, fx);
        } finally {
          opened.dispose();
        }
        const ref = SafetensorsFile.open(path.join(FIXTURES, `${name}.safetensors`));
        try {
          fx.steps.forEach((st, k) => {
            st.micro_batch_losses.forEach((want, m) => {
              const err = Math.abs(run.losses[k]![m]! - want) / Math.abs(want);
              record(`${kind.label} loss`, err);
              expect(err, `step ${k + 1} micro-batch ${m}: ${run.losses[k]![m]} vs torch ${want}`).toBeLessThan(TOLERANCE);
            });
            const normErr = Math.abs(run.norms[k]! - st.grad_norm) / st.grad_norm;
            record(`${kind.label} gradient norm`, normErr);
            expect(normErr, `step ${k + 1} gradient norm ${run.norms[k]} vs torch ${st.grad_norm}`).toBeLessThan(TOLERANCE);
            for (const [key, got] of run.grads[k]!) {
              const want = ref.readFloat32(`step${k + 1}/grads/${key}`);
              const err = l2Diff(got, want) / l2(want);
              record(`${kind.label} gradient (per tensor)`, err);
              expect(err, `step ${k + 1} gradient of ${key}`).toBeLessThan(TOLERANCE);
            }
            for (const [key, got] of run.weights[k]!) {
              const want = ref.readFloat32(`step${k + 1}/weights/${key}`);
              const initial = ref.readFloat32(`initial/${key}`);
              const err = l2Diff(got, want) / l2(want);
              const errUpdate = l2Diff(got, want) / l2Diff(want, initial);
              record(`${kind.label} weights (per tensor, over |weights|)`, err);
              record(`${kind.label} weights (per tensor, over |update|)`, errUpdate);
              expect(err, `step ${k + 1} weights of ${key}`).toBeLessThan(TOLERANCE);
              expect(errUpdate, `step ${k + 1} update of ${key}`).toBeLessThan(UPDATE_TOLERANCE);
            }
          });
        } finally {
          ref.close();
        }
      }, 120_000);
    }
  });
}
