/**
 * `ditty quantize` on the fixtures: the bitsandbytes key layout of REFERENCE.md key for key, the
 * quant-state JSON and config.json as transformers writes them, eval close to the float model,
 * inspect's byte accounting, and the errors.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { fromFloat32 } from '../../src/io/dtypes.js';
import { writeSafetensors } from '../../src/io/safetensors-writer.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import type { TensorSource } from '../../src/io/tensor-source.js';
import { quantStateJson } from '../../src/quant/bnb-format.js';
import { NF4_CODE } from '../../src/quant/nf4-codebook.js';
import { quantizeNf4 } from '../../src/quant/nf4.js';
import { runCli } from '../helpers/cli.js';
import { sharedPath } from '../helpers/shared.js';

const FIXTURES = ['tiny-rwkv', 'tiny-neox-sequential'].map((name) => ({ name, ...sharedPath('fixtures', name) }));
const present = FIXTURES.every((f) => f.present);

/** The linears `ditty quantize` turns into 4-bit (every linear but the output head). */
const QUANTIZED: Record<string, RegExp> = {
  'tiny-rwkv': /^rwkv\.blocks\.\d+\.(attention\.(key|value|receptance|output)|feed_forward\.(key|value|receptance))$/,
  'tiny-neox-sequential': /^gpt_neox\.layers\.\d+\.(attention\.(query_key_value|dense)|mlp\.(dense_h_to_4h|dense_4h_to_h))$/,
};
const BNB_SUFFIXES = ['', '.absmax', '.quant_map', '.nested_absmax', '.nested_quant_map', '.quant_state.bitsandbytes__nf4'];

interface RefText { text: string; loss: number }
function referenceTexts(folder: string): RefText[] {
  return (JSON.parse(fs.readFileSync(path.join(folder, 'reference.json'), 'utf8')) as { texts: RefText[] }).texts;
}

async function evalLoss(model: string, text: string): Promise<number> {
  const r = await runCli(['eval', model, '--text', text, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { loss: number }).loss;
}

/** Byte equality without vitest's element-by-element diff (slow on megabytes). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function f32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.slice().buffer);
}

let tmp = '';
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-quantize-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!present)('ditty quantize on the fixtures', () => {
  for (const fixture of FIXTURES) {
    describe(fixture.name, () => {
      let out = '';
      let stderr = '';
      beforeAll(async () => {
        out = path.join(tmp, fixture.name);
        const r = await runCli(['quantize', fixture.path, '--out', out]);
        expect(r.status, r.stderr).toBe(0);
        stderr = r.stderr;
        expect(r.stdout).toMatch(/quantized \d+ linear layers to NF4 \(blocksize 64, double quant, compute dtype bfloat16\)/);
        expect(r.stdout).toMatch(/bits per parameter/);
      });

      it('writes the bitsandbytes keys of REFERENCE.md for every quantized linear, the rest as stored', () => {
        const src = SafetensorsFile.open(path.join(fixture.path, 'model.safetensors'));
        const q = SafetensorsFile.open(path.join(out, 'model.safetensors'));
        try {
          expect(q.metadata).toEqual({ format: 'pt' });
          const linears = src.names().filter((n) => n.endsWith('.weight') && QUANTIZED[fixture.name]!.test(n.slice(0, -7))).map((n) => n.slice(0, -7));
          expect(linears.length).toBeGreaterThan(0);
          const expected = new Set<string>();
          for (const name of src.names()) {
            const p = name.endsWith('.weight') ? name.slice(0, -7) : undefined;
            if (p !== undefined && linears.includes(p)) for (const s of BNB_SUFFIXES) expected.add(`${name}${s}`);
            else expected.add(name);
          }
          expect(new Set(q.names())).toEqual(expected);
          for (const p of linears) {
            const w = `${p}.weight`;
            const shape = src.info(w).shape as [number, number];
            const n = shape[0] * shape[1];
            const blocks = Math.ceil(n / 64);
            expect(q.info(w)).toMatchObject({ dtype: 'U8', shape: [Math.ceil(n / 2), 1] });
            expect(q.info(`${w}.absmax`)).toMatchObject({ dtype: 'U8', shape: [blocks] });
            expect(q.info(`${w}.quant_map`)).toMatchObject({ dtype: 'F32', shape: [16] });
            expect(q.info(`${w}.nested_absmax`)).toMatchObject({ dtype: 'F32', shape: [Math.ceil(blocks / 256)] });
            expect(q.info(`${w}.nested_quant_map`)).toMatchObject({ dtype: 'F32', shape: [256] });
            expect(f32(q.readBytes(`${w}.quant_map`))).toEqual(NF4_CODE);
            // bit-exact with quantizing the float weight, and the JSON exactly as bitsandbytes writes it:
            // its "dtype" is that of the weight quantized (F32 here), not the compute dtype (bfloat16)
            const state = quantizeNf4(src.readFloat32(w), { shape, blocksize: 64, doubleQuant: true });
            expect(sameBytes(q.readBytes(w), state.packed)).toBe(true);
            expect(sameBytes(q.readBytes(`${w}.absmax`), state.doubleQuant!.absmaxQ)).toBe(true);
            const json = new TextDecoder().decode(q.readBytes(`${w}.quant_state.bitsandbytes__nf4`));
            expect(src.info(w).dtype).toBe('F32');
            expect(json).toBe(quantStateJson(state, 'float32'));
            expect(json).toMatch(new RegExp(`^\\{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": \\[${shape[0]}, ${shape[1]}\\], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": [-0-9.e]+\\}$`));
          }
          // head / embeddings / norms / biases / time_* kept byte for byte in their dtype
          for (const name of src.names().filter((n) => !linears.some((p) => n === `${p}.weight`))) {
            expect(q.info(name)).toEqual(src.info(name));
            expect(sameBytes(q.readBytes(name), src.readBytes(name)), name).toBe(true);
          }
          const kept = src.names().filter((n) => /(^head\.|embed|_ln|ln\d|ln_out|layernorm|time_|\.bias$)/.test(n));
          expect(kept.length).toBeGreaterThan(5);
          for (const name of kept) expect(q.info(name).dtype).toBe(src.info(name).dtype);
        } finally {
          src.close();
          q.close();
        }
      });

      it('aligns every tensor to its element size (odd-length U8 quant states come after the F32 tensors)', () => {
        const file = path.join(out, 'model.safetensors');
        const header = headerBytes(file);
        expect(header % 8).toBe(0);
        const json = readHeader(file);
        const sizes: Record<string, number> = { U8: 1, F16: 2, BF16: 2, F32: 4, I64: 8 };
        let oddU8 = 0;
        for (const [name, e] of Object.entries(json)) {
          if (name === '__metadata__') continue;
          expect((header + e.data_offsets[0]) % sizes[e.dtype]!, name).toBe(0);
          if (e.dtype === 'U8' && (e.data_offsets[1] - e.data_offsets[0]) % 4 !== 0) oddU8++;
        }
        expect(oddU8).toBeGreaterThan(0);
      });

      it('writes config.json with quantization_config as transformers does, and copies the tokenizer', () => {
        const text = fs.readFileSync(path.join(out, 'config.json'), 'utf8');
        const config = JSON.parse(text) as Record<string, unknown>;
        const original = JSON.parse(fs.readFileSync(path.join(fixture.path, 'config.json'), 'utf8')) as Record<string, unknown>;
        // RWKV: transformers would rescale (and corrupt) the 4-bit output/value layers unless rescale_every is 0
        const rwkv = fixture.name === 'tiny-rwkv';
        expect(original['rescale_every'] ?? 0).toBe(rwkv ? 6 : 0);
        if (rwkv) expect(stderr).toMatch(/^ditty: notice: rescale_every is set to 0 in config\.json: .*corrupting NF4 layers; .*bfloat16.*float16 overflow.*\n$/);
        else expect(stderr).not.toMatch(/rescale_every/);
        expect(config).toEqual({
          ...original,
          ...(rwkv ? { rescale_every: 0 } : {}),
          quantization_config: {
            _load_in_4bit: true, _load_in_8bit: false, bnb_4bit_compute_dtype: 'bfloat16', bnb_4bit_quant_storage: 'uint8',
            bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true, llm_int8_enable_fp32_cpu_offload: false,
            llm_int8_has_fp16_weight: false, llm_int8_skip_modules: null, llm_int8_threshold: 6.0, load_in_4bit: true,
            load_in_8bit: false, quant_method: 'bitsandbytes',
          },
        });
        expect(text).toContain('    "llm_int8_threshold": 6.0,\n');
        expect(text.endsWith('}\n')).toBe(true);
        expect(sameBytes(fs.readFileSync(path.join(out, 'tokenizer.json')), fs.readFileSync(path.join(fixture.path, 'tokenizer.json')))).toBe(true);
        expect(fs.readdirSync(path.dirname(out)).filter((f) => f.includes('.tmp-'))).toEqual([]);
      });

      // the float model's loss is the fixture's float64 reference (ditty eval reproduces it to 1e-4:
      // test/cli/model-commands.e2e.test.ts)
      it('eval of the 4-bit folder is within 2% of the float model on every reference text', async () => {
        for (const ref of referenceTexts(fixture.path)) {
          const nf4 = await evalLoss(out, ref.text);
          expect(Math.abs(nf4 - ref.loss) / ref.loss).toBeLessThan(0.02);
          expect(Math.abs(nf4 - ref.loss) / ref.loss, 'the 4-bit folder scores as the float model: not quantized?').toBeGreaterThan(1e-4);
        }
      });

      it('inspect --json reports bits per parameter and bytes by part', async () => {
        const r = await runCli(['inspect', out, '--json']);
        expect(r.status, r.stderr).toBe(0);
        const info = JSON.parse(r.stdout) as {
          parameters: number;
          linears: { path: string; shape: number[]; dtype: string; quantized: boolean; bytes: number; bits_per_parameter: number }[];
          quantization: { source: string; quantized_linears: number; bits_per_parameter_quantized: number; bytes: Record<string, number> };
        };
        const floatInfo = JSON.parse((await runCli(['inspect', fixture.path, '--json'])).stdout) as { parameters: number; quantization: null; linears: unknown[] };
        expect(info.parameters).toBe(floatInfo.parameters);
        expect(info.linears).toHaveLength(floatInfo.linears.length);
        expect(floatInfo.quantization).toBeNull();
        const quantized = info.linears.filter((l) => l.quantized);
        expect(quantized.every((l) => l.dtype === 'NF4' && QUANTIZED[fixture.name]!.test(l.path))).toBe(true);
        // tiny linears: 32x32 -> (512 + 16 + 4 + 4) bytes = 4.1875 bits; 128x32 -> 4.140625 (4.127 only for large ones)
        for (const l of quantized) {
          const n = l.shape[0]! * l.shape[1]!;
          const blocks = Math.ceil(n / 64);
          expect(l.bytes).toBe(n / 2 + blocks + 4 * Math.ceil(blocks / 256) + 4);
          expect(l.bits_per_parameter).toBeCloseTo((8 * l.bytes) / n, 12);
        }
        expect(info.linears.find((l) => l.shape[0] === 32 && l.shape[1] === 32 && l.quantized)?.bits_per_parameter).toBe(4.1875);
        const b = info.quantization.bytes;
        expect(info.quantization.source).toBe('checkpoint');
        expect(b['total']).toBe(fs.statSync(path.join(out, 'model.safetensors')).size - headerBytes(path.join(out, 'model.safetensors')));
        expect(b['packed_codes']! + b['absmax']! + b['nested_absmax']! + b['code_tables']! + b['quant_state']! + b['float_tensors']!).toBe(b['total']);
        expect(info.quantization.bits_per_parameter_quantized).toBeGreaterThan(4.127);
        expect(info.quantization.bits_per_parameter_quantized).toBeLessThan(4.19);
      });
    });
  }

  it('RWKV: ditty eval of the 4-bit folder does not depend on the rescale_every it writes', async () => {
    const out = path.join(tmp, 'tiny-rwkv');
    expect((JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>)['rescale_every']).toBe(0);
    const six = path.join(tmp, 'rescale-6');
    fs.cpSync(out, six, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(six, 'config.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(six, 'config.json'), JSON.stringify({ ...config, rescale_every: 6 }));
    const ref = referenceTexts(FIXTURES[0]!.path)[0]!;
    expect(await evalLoss(out, ref.text)).toBe(await evalLoss(six, ref.text));
  });

  it('--skip-modules entries are written as full module paths, which transformers 4.x matches (partial paths it does not)', async () => {
    const rwkv = FIXTURES[0]!;
    const out = path.join(tmp, 'skip-partial');
    const r = await runCli(['quantize', rwkv.path, '--out', out, '--skip-modules', 'blocks.1.attention.key,output', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const floatLinears = (JSON.parse(r.stdout) as { float_linears: string[] }).float_linears;
    const skip = (JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { quantization_config: { llm_int8_skip_modules: string[] } })
      .quantization_config.llm_int8_skip_modules;
    expect(skip).toEqual(['rwkv.blocks.0.attention.output', 'rwkv.blocks.1.attention.key', 'rwkv.blocks.1.attention.output', 'rwkv.blocks.2.attention.output', 'head']);
    // transformers 4.x _replace_with_bnb_linear keeps a linear when its leaf name is listed, or an entry
    // equals its path or is followed by "." inside it; the layers it keeps must be exactly those stored in float
    const keptByTransformers = (p: string): boolean =>
      skip.includes(p.slice(p.lastIndexOf('.') + 1)) || skip.some((k) => k === p || p.includes(`${k}.`));
    return withSource(out, (q) => {
      const linears = q.names().filter((n) => n.endsWith('.weight') && /(attention|feed_forward)\.\w+\.weight$|^head\.weight$/.test(n)).map((n) => n.slice(0, -7));
      expect(linears).toHaveLength(22);
      for (const p of linears) {
        const stored4bit = q.has(`${p}.weight.quant_state.bitsandbytes__nf4`);
        expect(keptByTransformers(p), p).toBe(!stored4bit);
        expect(floatLinears.includes(p), p).toBe(!stored4bit);
      }
    });
  });

  it('each quant state records the dtype its weight was stored in (BF16, F16), not --compute-dtype', async () => {
    const rwkv = FIXTURES[0]!;
    const half = path.join(tmp, 'half-input');
    fs.mkdirSync(half);
    const dtypeOf = (name: string): 'BF16' | 'F16' => (name.includes('attention') ? 'BF16' : 'F16');
    await withSource(rwkv.path, (src) => writeSafetensors(path.join(half, 'model.safetensors'), src.names().map((name) => ({
      name, dtype: dtypeOf(name), shape: src.info(name).shape, data: fromFloat32(src.readFloat32(name), dtypeOf(name)),
    }))));
    for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(rwkv.path, f), path.join(half, f));
    const out = path.join(tmp, 'half-quantized');
    const r = await runCli(['quantize', half, '--out', out, '--compute-dtype', 'float32']);
    expect(r.status, r.stderr).toBe(0);
    const qc = (JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { quantization_config: Record<string, unknown> }).quantization_config;
    expect(qc['bnb_4bit_compute_dtype']).toBe('float32');
    return withSource(out, (q) => {
      const states = q.names().filter((n) => n.endsWith('.quant_state.bitsandbytes__nf4'));
      expect(states).toHaveLength(21);
      for (const key of states) {
        const want = dtypeOf(key) === 'BF16' ? 'bfloat16' : 'float16';
        expect((JSON.parse(new TextDecoder().decode(q.readBytes(key))) as { dtype: string }).dtype, key).toBe(want);
      }
    });
  });

  it('--no-double-quant, --blocksize, --skip-modules and --compute-dtype reach the file', async () => {
    const rwkv = FIXTURES[0]!;
    const out = path.join(tmp, 'options');
    const r = await runCli(['quantize', rwkv.path, '--out', out, '--no-double-quant', '--blocksize', '128', '--skip-modules', 'feed_forward.value,rwkv.blocks.0.attention.key', '--compute-dtype', 'float16', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { quantized_linears: number; float_linears: string[]; bits_per_parameter: number };
    expect(summary.quantized_linears).toBe(21 - 4);
    expect(summary.float_linears).toEqual(expect.arrayContaining(['head', 'rwkv.blocks.0.attention.key', 'rwkv.blocks.2.feed_forward.value']));
    expect(summary.bits_per_parameter).toBe(4 + 32 / 128);
    const q = SafetensorsFile.open(path.join(out, 'model.safetensors'));
    try {
      expect(q.info('rwkv.blocks.0.attention.key.weight').dtype).toBe('F32');
      expect(q.has('rwkv.blocks.0.attention.key.weight.absmax')).toBe(false);
      expect(q.info('rwkv.blocks.1.attention.key.weight.absmax')).toMatchObject({ dtype: 'F32', shape: [8] });
      expect(q.has('rwkv.blocks.1.attention.key.weight.nested_absmax')).toBe(false);
      expect(new TextDecoder().decode(q.readBytes('rwkv.blocks.1.attention.key.weight.quant_state.bitsandbytes__nf4')))
        .toBe('{"quant_type": "nf4", "blocksize": 128, "dtype": "float32", "shape": [32, 32]}');
    } finally {
      q.close();
    }
    const qc = (JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as { quantization_config: Record<string, unknown> }).quantization_config;
    expect(qc).toMatchObject({ bnb_4bit_use_double_quant: false, bnb_4bit_compute_dtype: 'float16' });
    expect(new Set(qc['llm_int8_skip_modules'] as string[])).toEqual(new Set([
      'rwkv.blocks.0.attention.key', 'rwkv.blocks.0.feed_forward.value', 'rwkv.blocks.1.feed_forward.value', 'rwkv.blocks.2.feed_forward.value', 'head',
    ]));
    expect((qc['llm_int8_skip_modules'] as string[]).at(-1)).toBe('head');
    const ref = referenceTexts(rwkv.path)[0]!;
    expect(Math.abs(await evalLoss(out, ref.text) - ref.loss) / ref.loss).toBeLessThan(0.02);
  });

  it('writes shards and an index when --max-shard-mib is small, and they load the same', async () => {
    const rwkv = FIXTURES[0]!;
    const single = path.join(tmp, 'tiny-rwkv');
    const out = path.join(tmp, 'sharded');
    const r = await runCli(['quantize', rwkv.path, '--out', out, '--max-shard-mib', '4']);
    expect(r.status, r.stderr).toBe(0);
    const files = fs.readdirSync(out).sort();
    expect(files).toContain('model.safetensors.index.json');
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    // every part of a 4-bit layer in the same shard as its weight, and every tensor of every shard aligned
    for (const [name, file] of Object.entries(index.weight_map)) {
      const i = name.indexOf('.weight.');
      if (i > 0) expect(index.weight_map[name.slice(0, i + 7)], name).toBe(file);
    }
    const sizes: Record<string, number> = { U8: 1, F32: 4 };
    for (const file of new Set(Object.values(index.weight_map))) {
      const header = headerBytes(path.join(out, file));
      for (const [name, e] of Object.entries(readHeader(path.join(out, file)))) {
        if (name !== '__metadata__') expect((header + e.data_offsets[0]) % sizes[e.dtype]!, `${file} ${name}`).toBe(0);
      }
    }
    const ref = referenceTexts(rwkv.path)[1]!;
    expect(await evalLoss(out, ref.text)).toBe(await evalLoss(single, ref.text));
    return withSource(out, (sharded) => withSource(single, (one) => {
      expect(new Set(sharded.names())).toEqual(new Set(one.names()));
      expect(Object.keys(index.weight_map).length).toBe(one.names().length);
      expect(index.metadata.total_size).toBe(one.names().reduce((s, n) => s + one.readBytes(n).length, 0));
    }));
  });

  it('refuses a bad skip module, a bad blocksize, an existing --out without --force, and a 4-bit input', async () => {
    const rwkv = FIXTURES[0]!;
    const bad = await runCli(['quantize', rwkv.path, '--out', path.join(tmp, 'bad'), '--skip-modules', 'attention.query']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/skip module "attention.query" matches no linear layer; the model's 22 linear layers: .*key ×6.*; e\.g\. .*rwkv\.blocks\.0\.attention\.key/);
    expect(bad.stderr).not.toMatch(/at .*\.js/);
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(false);
    const size = await runCli(['quantize', rwkv.path, '--out', path.join(tmp, 'bad'), '--blocksize', '100']);
    expect(size.status).not.toBe(0);
    expect(size.stderr).toMatch(/--blocksize must be a power of two between 32 and 4096, got 100/);
    const busy = path.join(tmp, 'busy');
    fs.mkdirSync(busy);
    fs.writeFileSync(path.join(busy, 'keep.txt'), 'x');
    const exists = await runCli(['quantize', rwkv.path, '--out', busy]);
    expect(exists.status).toBe(1);
    expect(exists.stderr).toMatch(/--out .*busy: the folder exists and is not empty; pass --force to replace it/);
    expect(fs.readdirSync(busy)).toEqual(['keep.txt']);
    const forced = await runCli(['quantize', rwkv.path, '--out', busy, '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(fs.readdirSync(busy).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    const again = await runCli(['quantize', busy, '--out', path.join(tmp, 'twice')]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already a bitsandbytes 4-bit checkpoint/);
    const self = await runCli(['quantize', rwkv.path, '--out', rwkv.path, '--force']);
    expect(self.status).toBe(1);
    expect(self.stderr).toMatch(/would replace the model folder/);
  });

  it('inspect --quantize 4 predicts what quantize writes', async () => {
    const rwkv = FIXTURES[0]!;
    const planned = JSON.parse((await runCli(['inspect', rwkv.path, '--quantize', '4', '--json'])).stdout) as { quantization: { source: string; bits_per_parameter_quantized: number; bytes: Record<string, number> } };
    const actual = JSON.parse((await runCli(['inspect', path.join(tmp, 'tiny-rwkv'), '--json'])).stdout) as { quantization: { bits_per_parameter_quantized: number; bytes: Record<string, number> } };
    expect(planned.quantization.source).toBe('planned');
    expect(planned.quantization.bits_per_parameter_quantized).toBe(actual.quantization.bits_per_parameter_quantized);
    for (const k of ['packed_codes', 'absmax', 'nested_absmax', 'code_tables', 'float_tensors']) expect(planned.quantization.bytes[k]).toBe(actual.quantization.bytes[k]);
    const text = await runCli(['inspect', path.join(tmp, 'tiny-rwkv')]);
    expect(text.stdout).toMatch(/rwkv\.blocks\.0\.attention\.key +\[32, 32\] {2}NF4 {2}1,024 {2}4\.188 bits {2}536 B/);
    expect(text.stdout).toMatch(/storage of the 4-bit checkpoint \(bytes\):\n {2}packed 4-bit codes +19,968\n/);
  });
});

function readHeader(file: string): Record<string, { dtype: string; data_offsets: [number, number] }> {
  const n = headerBytes(file);
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(n - 8);
    fs.readSync(fd, b, 0, n - 8, 8);
    return JSON.parse(b.toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  } finally {
    fs.closeSync(fd);
  }
}

function headerBytes(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(8);
    fs.readSync(fd, b, 0, 8, 0);
    return 8 + Number(b.readBigUInt64LE(0));
  } finally {
    fs.closeSync(fd);
  }
}

async function withSource(folder: string, f: (s: TensorSource) => void | Promise<void>): Promise<void> {
  const s = await openCheckpoint(folder);
  try {
    await f(s);
  } finally {
    s.close();
  }
}
