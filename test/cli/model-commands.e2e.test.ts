import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { nativeMissing } from '../helpers/native.js';
import { sharedPath } from '../helpers/shared.js';

const rwkv = sharedPath('fixtures', 'tiny-rwkv');
const neox = sharedPath('fixtures', 'tiny-neox-parallel');

interface RefText { text: string; loss: number; num_tokens: number }
function referenceTexts(folder: string): RefText[] {
  return (JSON.parse(fs.readFileSync(path.join(folder, 'reference.json'), 'utf8')) as { texts: RefText[] }).texts;
}

describe.skipIf(!rwkv.present || !neox.present)('ditty eval / inspect / generate on the fixtures', () => {
  for (const fixture of [rwkv, neox]) {
    it(`eval --json reproduces the reference loss of ${path.basename(fixture.path)}`, async () => {
      const ref = referenceTexts(fixture.path)[0]!;
      const r = await runCli(['eval', fixture.path, '--text', ref.text, '--json']);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { loss: number; perplexity: number; tokens: number; backend: string };
      expect(out.tokens).toBe(ref.num_tokens);
      expect(Math.abs(out.loss - ref.loss) / ref.loss).toBeLessThan(1e-4);
      expect(out.perplexity).toBeCloseTo(Math.exp(out.loss), 6);
      // backend auto: the native engine where it was built
      expect(out.backend).toMatch(nativeMissing ? /^tfjs wasm$/ : /^native cpu \(/);
    });
  }

  it('eval --quantize 4 scores the NF4 model (within 2% of float), --quantize 16 the float one', async () => {
    const ref = referenceTexts(rwkv.path)[2]!;
    const loss = async (extra: string[]) => {
      const r = await runCli(['eval', rwkv.path, '--text', ref.text, '--json', ...extra]);
      expect(r.status, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { loss: number }).loss;
    };
    const nf4 = await loss(['--quantize', '4']);
    expect(nf4).not.toBe(await loss([]));
    expect(Math.abs(nf4 - ref.loss) / ref.loss).toBeLessThan(0.02);
    expect(Math.abs(await loss(['--quantize', '16']) - ref.loss) / ref.loss).toBeLessThan(1e-4);
    const bad = await runCli(['eval', rwkv.path, '--text', 'a b', '--quantize', '8']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--quantize/);
  });

  it('eval on the cpu backend agrees with wasm', async () => {
    const ref = referenceTexts(rwkv.path)[1]!;
    const r = await runCli(['eval', rwkv.path, '--text', ref.text, '--json', '--backend', 'cpu']);
    expect(r.status, r.stderr).toBe(0);
    expect(Math.abs((JSON.parse(r.stdout) as { loss: number }).loss - ref.loss) / ref.loss).toBeLessThan(1e-4);
  });

  it('inspect lists every linear with its [out, in] shape', async () => {
    const r = await runCli(['inspect', rwkv.path, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { linears: { path: string; shape: number[] }[]; parameters: number; linear_names: { name: string; count: number }[] };
    expect(out.linears).toHaveLength(3 * 7 + 1);
    expect(out.linears).toContainEqual(expect.objectContaining({ path: 'rwkv.blocks.2.feed_forward.value', shape: [32, 128] }));
    expect(out.linears).toContainEqual(expect.objectContaining({ path: 'head', shape: [50277, 32] }));
    expect(out.linear_names.find((n) => n.name === 'key')?.count).toBe(6);
    const text = await runCli(['inspect', neox.path]);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain('gpt_neox.layers.1.attention.query_key_value');
    expect(text.stdout).toMatch(/query_key_value: Linear \[96, 32\] \+bias/);
  });

  it('generate streams deterministic greedy and seeded text', async () => {
    for (const fixture of [rwkv, neox]) {
      const a = await runCli(['generate', fixture.path, '--prompt', 'Hello', '--max-new-tokens', '8', '--temperature', '0']);
      const b = await runCli(['generate', fixture.path, '--prompt', 'Hello', '--max-new-tokens', '8', '--temperature', '0']);
      expect(a.status, a.stderr).toBe(0);
      expect(a.stdout.startsWith('Hello')).toBe(true);
      expect(a.stdout.length).toBeGreaterThan('Hello\n'.length);
      expect(a.stdout).toBe(b.stdout);
      const s1 = await runCli(['generate', fixture.path, '--prompt', 'Hello', '--max-new-tokens', '8', '--seed', '7', '--top-p', '0.9']);
      const s2 = await runCli(['generate', fixture.path, '--prompt', 'Hello', '--max-new-tokens', '8', '--seed', '7', '--top-p', '0.9']);
      expect(s1.stdout).toBe(s2.stdout);
      expect(s1.stderr).toMatch(/8 tokens in/);
      const s3 = await runCli(['generate', fixture.path, '--prompt', 'Hello', '--max-new-tokens', '8', '--seed', '8', '--top-p', '0.9']);
      expect(s3.stdout).not.toBe(s1.stdout);
    }
  });

  it('too little text, an empty prompt and files where folders belong are one-line errors', async () => {
    const config = path.join(rwkv.path, 'config.json');
    for (const [args, message] of [
      [['eval', rwkv.path, '--text', ''], /error: the text has 0 token\(s\); at least 2 are needed/],
      [['eval', rwkv.path, '--text', 'a'], /error: the text has 1 token\(s\); at least 2 are needed/],
      [['generate', rwkv.path, '--prompt', ''], /error: the prompt is empty after tokenization/],
      [['generate', rwkv.path, '--prompt', 'a', '--max-new-tokens', '0'], /--max-new-tokens must be an integer from 1 up, got "0"/],
      [['inspect', config], /config\.json is a file: expected a model folder/],
      [['eval', rwkv.path, '--text', 'a b', '--adapter', config], /config\.json: is a file; expected a PEFT adapter folder/],
    ] as const) {
      const r = await runCli(args);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    }
  });
});

describe('CLI errors', () => {
  it('rejects bad option values with the option name', async () => {
    const r = await runCli(['generate', 'x/y', '--prompt', 'a', '--top-p', '2']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--top-p must be a number in \(0, 1\], got "2"/);
    const b = await runCli(['eval', 'x/y', '--text', 'a', '--backend', 'metal']);
    expect(b.status).not.toBe(0);
    expect(b.stderr).toMatch(/--backend must be one of auto, cuda, cpu, wasm, js, tensorflow, got "metal"/);
  });

  it('names an unsupported model type and lists the supported ones', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-cli-'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 8 }));
    const r = await runCli(['inspect', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/llama/);
    expect(r.stderr).toMatch(/rwkv/);
    expect(r.stderr).toMatch(/gpt_neox/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    fs.rmSync(dir, { recursive: true });
  });

  it('reports a missing local folder or malformed repo id without a stack trace', async () => {
    const r = await runCli(['eval', './no/such/folder', '--text', 'hello there']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no\/such\/folder/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
