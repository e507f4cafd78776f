/**
 * The native engine's CUDA device without a GPU: the whole addon built with every CUDA source
 * compiled by g++ against the emulator (scripts/build-native-emu.mjs) and the stand-in cuBLASLt,
 * training the tiny fixtures a few steps on cuda and on cpu (the same addon) with the losses,
 * gradient norms and adapters held together: to ~1e-4 with fp32 activations, to bf16's precision
 * with bf16 ones. And the real build on this machine (no driver): `backend: cuda` is one line.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNativeEmu, emuToolchain } from '../../scripts/build-native-emu.mjs';
import { resolveBackend } from '../../src/engine/choice.js';
import type { ComputeDtype, MicroBatch } from '../../src/engine/engine.js';
import { cudaStatus, DEVICE, DTYPE, type NativeAddon } from '../../src/engine/native/addon.js';
import { InputError } from '../../src/io/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import type { LoraConfig } from '../../src/lora/config.js';
import { readModelConfig, type ModelConfig } from '../../src/models/config.js';
import { weightLoaderOptions } from '../../src/models/load.js';
import { NativeEngine } from '../../src/runtime/native-engine.js';
import { ADAMW, quantization, randomBatch, randomInitial } from '../engine-parity/engines.js';
import { nativeAddon } from '../helpers/native.js';
import { fixtureDir, fixturePresent } from '../models/fixtures.js';

const toolchain = emuToolchain();
if (!toolchain.ok) process.stderr.write(`skipping the emulated CUDA engine tests: ${toolchain.reason}\n`);

let emu: NativeAddon | undefined;
let emuError: string | undefined;

beforeAll(async () => {
  if (!toolchain.ok) return;
  const built = await buildNativeEmu(() => {});
  if (!built.ok) {
    emuError = built.reason;
    return;
  }
  if (built.cublaslt) process.env.DITTY_CUBLASLT = built.cublaslt;
  emu = createRequire(import.meta.url)(built.addon) as NativeAddon;
}, 1_800_000);

function emulated(): NativeAddon {
  if (!emu) throw new Error(`the emulated addon was not built: ${emuError}`);
  return emu;
}

const LINEARS: Record<ModelConfig['model_type'], string[]> = {
  rwkv: ['key', 'value', 'receptance', 'output'],
  gpt_neox: ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h'],
};
const STEPS = 3;

/** How close a cuda run comes to the cpu's per compute dtype: relative loss and gradient norm per step, worst adapter weight. */
const AGREEMENT: readonly { what: string; dtype: ComputeDtype; loss: number; gradNorm: number; adapters: number }[] = [
  { what: 'fp32 activations within 1e-4', dtype: 'fp32', loss: 1e-4, gradNorm: 1e-3, adapters: 1e-6 },
  // adapters measured ~5e-5; a wrong gradient moves a weight by up to lr = 1e-2 a step
  { what: "bf16 activations within bf16's precision", dtype: 'auto', loss: 1e-2, gradNorm: 5e-2, adapters: 1e-3 },
];

// AdamW eps 1: an update is -lr g / (|g| + 1), monotone in the gradient, so engines whose gradients
// agree to rounding give updates that do too (eps 1e-8 turns a near-zero gradient's sign into a full lr step)
const ADAMW_EPS1 = { ...ADAMW, epsilon: 1 };

interface Run {
  readonly losses: number[];
  readonly norms: number[];
  readonly adapters: Map<string, Float32Array>;
}

function train(name: string, device: 'cpu' | 'cuda', computeDtype: ComputeDtype, batch: MicroBatch): Run {
  const dir = fixtureDir(name);
  const config = readModelConfig(path.join(dir, 'config.json'));
  const lora: LoraConfig = { r: 4, alpha: 8, dropout: 0.1, targetModules: LINEARS[config.model_type], useRslora: false, bias: 'none', fanInFanOut: false };
  const source = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  let engine: NativeEngine;
  try {
    engine = NativeEngine.open({
      config, source, weights: weightLoaderOptions(config, source, quantization(4)), addon: emulated(), device, computeDtype,
      lora: { config: lora, seed: 3, initial: randomInitial(config, lora, 9) }, adamw: ADAMW_EPS1, checkpointing: 'selective',
    });
  } finally {
    source.close();
  }
  try {
    const losses: number[] = [], norms: number[] = [];
    const n = batch.weight.reduce((s, w) => s + w, 0);
    for (let step = 0; step < STEPS; step++) {
      losses.push(engine.accumulate(batch, n, step));
      norms.push(engine.step(1e-2, 1));
    }
    return { losses, norms, adapters: new Map(engine.adapterTensors().map((t) => [t.name, t.values])) };
  } finally {
    engine.dispose();
  }
}

function worstAdapterDiff(a: Run, b: Run): number {
  let worst = 0;
  for (const [k, v] of a.adapters) {
    const w = b.adapters.get(k)!;
    for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - w[i]!));
  }
  return worst;
}

const relative = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

const FIXTURES = ['tiny-rwkv', 'tiny-neox-parallel', 'tiny-neox-sequential'] as const;

describe.skipIf(!toolchain.ok)('the CUDA device, emulated on the CPU', () => {
  it('reports itself as an emulated, usable device', () => {
    const info = emulated().cudaInfo();
    expect(info).toMatchObject({ built: true, available: true, emulated: true });
    expect(info.cublasLt).toMatch(/standin/);
  });

  it('keeps bf16 buffers on the device, reads them back widened, and refuses calls that mix devices', () => {
    const a = emulated();
    const x = a.alloc(DTYPE.bf16, 4, DEVICE.cuda), y = a.alloc(DTYPE.f32, 4, DEVICE.cpu), z = a.alloc(DTYPE.bf16, 4, DEVICE.cuda);
    try {
      a.write(x, Uint16Array.of(0x3f80, 0x4000, 0xbf80, 0), 0);
      a.addInplace(z, x, 4);
      a.addInplace(z, x, 4);
      const out = new Uint16Array(4);
      a.read(z, out, 0);
      expect([...out]).toEqual([0x4000, 0x4080, 0xc000, 0]);
      expect(a.memoryStats(DEVICE.cuda).live).toBeGreaterThanOrEqual(16);
      expect(() => a.addInplace(y, x, 4)).toThrow(/^x: this buffer is on the cuda device, y on the cpu device/);
    } finally {
      for (const id of [x, y, z]) a.free(id);
    }
  });

  for (const name of FIXTURES) {
    describe.skipIf(!fixturePresent(name))(name, () => {
      const runs = new Map<string, Run>();
      const batch = (): MicroBatch => {
        const config = readModelConfig(path.join(fixtureDir(name), 'config.json'));
        return randomBatch(2, 9, config.vocab_size, 17);
      };
      const run = (device: 'cpu' | 'cuda', dtype: ComputeDtype): Run => {
        const key = `${device}:${dtype}`;
        if (!runs.has(key)) runs.set(key, train(name, device, dtype, batch()));
        return runs.get(key)!;
      };
      afterAll(() => {
        const cpu = runs.get('cpu:auto');
        for (const [k, r] of runs) if (cpu && k !== 'cpu:auto') process.stderr.write(`${name} ${k} vs cpu: losses ${r.losses.map((l, i) => relative(l, cpu.losses[i]!).toExponential(1)).join(' ')}, adapters ${worstAdapterDiff(r, cpu).toExponential(1)}\n`);
      });

      for (const t of AGREEMENT) {
        it(`trains ${STEPS} steps on cuda with ${t.what} of the cpu`, () => {
          const cpu = run('cpu', 'auto'), cuda = run('cuda', t.dtype);
          for (let i = 0; i < STEPS; i++) {
            expect(relative(cuda.losses[i]!, cpu.losses[i]!)).toBeLessThan(t.loss);
            expect(relative(cuda.norms[i]!, cpu.norms[i]!)).toBeLessThan(t.gradNorm);
          }
          expect(worstAdapterDiff(cuda, cpu)).toBeLessThan(t.adapters);
        }, 600_000);
      }
    });
  }
});

describe.skipIf(!nativeAddon)('the real build on a machine without a usable GPU', () => {
  const info = nativeAddon?.cudaInfo();
  it.skipIf(!info || info.available)('says in one line why backend cuda cannot run, and auto takes the CPU', () => {
    const status = cudaStatus();
    expect(status.usable).toBe(false);
    const reason = status.usable ? '' : status.reason;
    if (info!.built) expect(reason).toMatch(/^no usable NVIDIA driver \(CUDA error 35: |^no NVIDIA GPU found \(CUDA error 100: /);
    else expect(reason).toMatch(/^the CUDA device was not built: /);
    expect(reason).not.toContain('\n');
    expect(() => resolveBackend('cuda')).toThrow(InputError);
    expect(() => resolveBackend('cuda')).toThrow(`backend cuda: ${reason}; use backend: cpu`);
    expect(resolveBackend('auto').resolved).toEqual({ engine: 'native', device: 'cpu' });
    expect(() => nativeAddon!.alloc(DTYPE.f32, 4, DEVICE.cuda)).toThrow(info!.built ? reason : /has no CUDA device/);
  });
});
