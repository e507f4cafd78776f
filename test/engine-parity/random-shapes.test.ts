/**
 * The native engine against the tfjs engine on random tiny models of odd sizes (hidden 40 / 24 with
 * 3 heads, vocab 97, intermediate 72 / 56, T = 1, 7, 33, B = 1 and 3), RWKV and GPT-NeoX (parallel and
 * sequential residual, rotary_pct 0.25 and 1.0, gelu, gelu_new, gelu_fast), float and NF4 bases, LoRA
 * with dropout 0.1 on the default targets (and on every linear): one `accumulate` with the same seed and
 * micro-step, then one AdamW step. Gradients are internal to an engine, so they are compared through
 * what the contract returns: the loss, the gradient norm, and each adapter tensor's update.
 *
 * AdamW's first update is -lr * g / (|g| + eps) per element: with eps 1e-8 that is -lr * sign(g) and
 * would compare only signs, so the update check runs with eps = 1 and lr = 1, where the update is
 * -g / (|g| + 1), a monotone function that keeps g's relative error for the small gradients here.
 * The native engine runs with checkpointing none, selective and full; all three must agree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdamWSettings, Checkpointing } from '../../src/engine/engine.js';
import type { LoraConfig } from '../../src/lora/config.js';
import { useBackend } from '../helpers/backend.js';
import { nativeMissing } from '../helpers/native.js';
import {
  ScaledRandomSource, configOf, openNative, openTfjs, randomBatch, randomInitial, maxAbsDiff, relErr, trainStep, updateError, type ParitySetup, type StepResult,
} from './engines.js';

const LOSS_REL = 1e-5;
const GRAD_REL = 1e-4;
/** the native engine's three checkpointing policies compute the same numbers */
const POLICY_REL = 1e-6;
/** eps 1 makes AdamW's first update a monotone function of the gradient (see the header) */
const ADAMW_LINEAR: AdamWSettings = { beta1: 0.9, beta2: 0.999, epsilon: 1, weightDecay: 0 };
const LR = 1;

const rwkv = (): Record<string, unknown> => ({
  model_type: 'rwkv', vocab_size: 97, hidden_size: 40, attention_hidden_size: 40, intermediate_size: 72,
  num_hidden_layers: 2, layer_norm_epsilon: 1e-5, rescale_every: 0, context_length: 64, tie_word_embeddings: false,
});
const neox = (parallel: boolean, rotaryPct: number, act: string): Record<string, unknown> => ({
  model_type: 'gpt_neox', vocab_size: 97, hidden_size: 24, num_attention_heads: 3, intermediate_size: 56, num_hidden_layers: 2,
  hidden_act: act, rotary_pct: rotaryPct, rotary_emb_base: 10000, max_position_embeddings: 64, layer_norm_eps: 1e-5,
  use_parallel_residual: parallel, tie_word_embeddings: false,
});

interface Case {
  readonly label: string;
  readonly json: Record<string, unknown>;
  readonly B: number;
  readonly T: number;
  readonly bits: 4 | 16;
  /** undefined: the architecture's default targets */
  readonly targets?: string[];
  readonly headChunk?: number;
}

const CASES: Case[] = [
  { label: 'RWKV B1 T1 float', json: rwkv(), B: 1, T: 1, bits: 16 },
  { label: 'RWKV B3 T7 NF4', json: rwkv(), B: 3, T: 7, bits: 4 },
  { label: 'RWKV B1 T33 float, every linear', json: rwkv(), B: 1, T: 33, bits: 16, targets: ['key', 'value', 'receptance', 'output'] },
  { label: 'RWKV B3 T33 NF4', json: rwkv(), B: 3, T: 33, bits: 4 },
  // 300 rows: the head's loss crosses its default chunk of 256 rows
  { label: 'RWKV B3 T100 NF4', json: rwkv(), B: 3, T: 100, bits: 4 },
  { label: 'NeoX parallel rotary 0.25 gelu B3 T33 NF4, head in chunks of 13 rows', json: neox(true, 0.25, 'gelu'), B: 3, T: 33, bits: 4, headChunk: 13 },
  { label: 'NeoX sequential rotary 1.0 gelu_new B1 T7 float', json: neox(false, 1, 'gelu_new'), B: 1, T: 7, bits: 16 },
  { label: 'NeoX parallel rotary 1.0 gelu_new B1 T1 NF4', json: neox(true, 1, 'gelu_new'), B: 1, T: 1, bits: 4 },
  {
    label: 'NeoX sequential rotary 0.25 gelu_fast B3 T33 NF4, every linear', json: neox(false, 0.25, 'gelu_fast'), B: 3, T: 33, bits: 4,
    targets: ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h'],
  },
  { label: 'NeoX parallel rotary 0.25 gelu B3 T7 float, every linear', json: neox(true, 0.25, 'gelu'), B: 3, T: 7, bits: 16, targets: ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h'] },
];

const DEFAULT_TARGETS: Record<string, string[]> = { rwkv: ['key', 'value', 'receptance'], gpt_neox: ['query_key_value'] };

const worst = new Map<string, number>();
function record(what: string, err: number): void {
  worst.set(what, Math.max(worst.get(what) ?? 0, err));
}
afterAll(() => {
  for (const [k, v] of worst) process.stderr.write(`engine parity (random shapes) worst ${k}: ${v.toExponential(2)}\n`);
});

describe.skipIf(nativeMissing)('native vs tfjs engine: one LoRA training step on random tiny shapes', () => {
  beforeAll(async () => { await useBackend('wasm'); });

  it.each(CASES.map((c) => [c.label, c] as const))('%s', (_, c) => {
    const config = configOf(c.json);
    const lora: LoraConfig = {
      r: 4, alpha: 8, dropout: 0.1, targetModules: c.targets ?? DEFAULT_TARGETS[config.model_type]!, useRslora: false, bias: 'none', fanInFanOut: false,
    };
    const setup: ParitySetup = {
      config, source: () => new ScaledRandomSource(c.json, 17), bits: c.bits, adamw: ADAMW_LINEAR,
      lora: { config: lora, seed: 23, initial: randomInitial(config, lora, 29) }, ...(c.headChunk !== undefined ? { headChunk: c.headChunk } : {}),
    };
    const batch = randomBatch(c.B, c.T, config.vocab_size, 31 + c.T);
    const targets = batch.weight.reduce((s, w) => s + w, 0);
    const microStep = 5;

    const tfjs = openTfjs(setup);
    let ref: StepResult;
    try {
      ref = trainStep(tfjs, batch, targets, microStep, LR);
    } finally {
      tfjs.dispose();
    }
    const policies: Checkpointing[] = ['none', 'selective', 'full'];
    const runs = policies.map((p) => {
      const native = openNative(setup, p);
      try {
        return trainStep(native, batch, targets, microStep, LR);
      } finally {
        native.dispose();
      }
    });

    expect(ref.delta.size).toBeGreaterThan(0);
    const moving = [...ref.delta.values()].filter((d) => d.some((v) => v !== 0)).length;
    // every B moves, and every A too once T > 1
    expect(moving, 'adapter tensors with a gradient').toBeGreaterThanOrEqual(c.T > 1 ? ref.delta.size : ref.delta.size / 2);
    for (const [k, r] of runs.entries()) {
      const tag = `${c.label} checkpointing ${policies[k]}`;
      expect(relErr(r.evalLoss, ref.evalLoss), `${tag}: lossSum native ${r.evalLoss} tfjs ${ref.evalLoss}`).toBeLessThan(LOSS_REL);
      record('lossSum', relErr(r.evalLoss, ref.evalLoss));
      // dropout changes the training loss: the same masks on both engines
      expect(r.loss).not.toBe(r.evalLoss / targets);
      expect(relErr(r.loss, ref.loss), `${tag}: accumulate native ${r.loss} tfjs ${ref.loss}`).toBeLessThan(LOSS_REL);
      record('accumulate loss', relErr(r.loss, ref.loss));
      expect(relErr(r.norm, ref.norm), `${tag}: grad norm native ${r.norm} tfjs ${ref.norm}`).toBeLessThan(GRAD_REL);
      record('grad norm', relErr(r.norm, ref.norm));
      expect([...r.delta.keys()]).toEqual([...ref.delta.keys()]);
      for (const [name, want] of ref.delta) {
        const got = r.delta.get(name)!;
        const { err, scale } = updateError(got, want);
        if (scale === 0) {
          // a zero gradient (e.g. RWKV's key at T = 1: WKV's first output is v alone) is zero on both
          expect(got.every((v) => v === 0), `${tag}: ${name} moves on native only`).toBe(true);
          continue;
        }
        // (new - old) carries float32 rounding of the weight itself: 2 ulp of the largest weight
        const floor = 2 * 2 ** -23 * ref.magnitude.get(name)! / scale;
        expect(err, `${tag}: update of ${name} (scale ${scale.toExponential(2)}, float32 floor ${floor.toExponential(1)})`).toBeLessThan(GRAD_REL + floor);
        record('adapter update (per tensor, relative to its largest update)', err);
        record('float32 floor allowed on an update', floor);
      }
      if (k === 0) continue;
      const base = runs[0]!;
      const policyErr = Math.max(relErr(r.loss, base.loss), relErr(r.norm, base.norm), relErr(r.evalLoss, base.evalLoss),
        ...[...base.delta].map(([name, d]) => maxAbsDiff(r.delta.get(name)!, d)));
      record('native checkpointing policies vs none', policyErr);
      expect(policyErr, `${tag} vs none`).toBeLessThan(POLICY_REL);
    }
  });
});
