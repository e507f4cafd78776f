/**
 * What a run leaves and tells beyond the loss (issue 10, items 3, 5, 6): samples during training,
 * the final adapter/ folder, generate with the training template, the warnings before a run, and
 * --dry-run. CLI tests on the tiny fixtures (dist/ must be built).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeHub } from '../hub/fake-hub.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const rwkv = sharedPath('fixtures', 'tiny-rwkv');
const neox = sharedPath('fixtures', 'tiny-neox-parallel');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const TINY = path.join(REPO_ROOT, 'configs', 'tiny.yaml');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-run-outputs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface SampleLine { step: number; prompt: string; output: string; settings: Record<string, unknown> }

function jsonLines<T>(file: string): T[] {
  return fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);
}

const present = rwkv.present && neox.present && dolly.present;

describe.skipIf(!present)('ditty train --dry-run and the warnings before a run', () => {
  it('prints the data statistics, one masked block, the memory estimate and why there is no time estimate, and writes nothing', async () => {
    const out = path.join(tmp, 'dry');
    const r = await runCli(['train', TINY, '--dry-run', '--set', `output.dir=${out}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/config .*tiny\.yaml: valid; model .*tiny-rwkv \(rwkv, 3 layers/);
    expect(r.stdout).toMatch(/^rows: 406 read, 0 skipped, 398 train, 8 validation$/m);
    expect(r.stdout).toMatch(/one training block as the model sees it/);
    expect(r.stdout).toMatch(/▶[^◀]+◀/);
    expect(r.stdout).toMatch(/memory estimate: about [\d.]+ MiB \(base weights/);
    expect(r.stdout).toMatch(/time estimate: not made by a dry run .*needs the model loaded/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('plans a run for an engine this machine lacks: says so instead of refusing', async () => {
    const r = await runCli(['train', TINY, '--dry-run', '--set', 'backend=cuda']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/engine (native cuda|cuda, which cannot run on this machine \(backend cuda: .*\))$/m);
    expect(r.stdout).toMatch(/memory estimate: about/);
  });

  it('refuses --dry-run with --resume or --no-resume', async () => {
    const r = await runCli(['train', TINY, '--dry-run', '--no-resume']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--dry-run trains nothing, so --no-resume has no effect/);
  });

  it('refuses block_size beyond GPT-NeoX max_position_embeddings unless data.allow_long_blocks', async () => {
    const set = ['--set', `model.name_or_path=${neox.path}`, '--set', 'lora.target_modules=[query_key_value]', '--set', 'data.block_size=300'];
    const r = await runCli(['train', TINY, '--dry-run', ...set]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ditty: error: data\.block_size 300 is beyond the 256 positions .*max_position_embeddings.*data\.allow_long_blocks: true/m);
    const forced = await runCli(['train', TINY, '--dry-run', ...set, '--set', 'data.allow_long_blocks=true']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/warning: data\.block_size 300 is beyond .*allow_long_blocks is set/);
  });

  it('warns about block_size beyond RWKV context_length and max_steps of more than 10 epochs', async () => {
    const r = await runCli(['train', TINY, '--dry-run', '--set', 'data.block_size=300', '--set', 'data.max_rows=20', '--set', 'training.max_steps=500']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: data\.block_size 300 is beyond the 256 tokens this RWKV model was trained on \(context_length\)/);
    expect(r.stderr).toMatch(/warning: training\.max_steps 500 is [\d.]+ epochs of the \d+ training blocks \(more than 10\)/);
  });
});

describe.skipIf(!present)('generate past the model length', () => {
  it('lowers max new tokens on GPT-NeoX with a warning, and refuses a prompt longer than its positions', async () => {
    const r = await runCli(['generate', neox.path, '--prompt', 'Hello', '--max-new-tokens', '300', '--temperature', '0']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: max new tokens lowered from 300 to \d+: .*256 positions \(max_position_embeddings\)/);
    const long = await runCli(['generate', neox.path, '--prompt', 'word '.repeat(400), '--max-new-tokens', '1']);
    expect(long.status).toBe(1);
    expect(long.stderr).toMatch(/ditty: error: the prompt is \d+ tokens; this GPT-NeoX model takes at most 256/);
  });
});

describe.skipIf(!present)('a run with eval.prompts: samples, the final adapter, generate with its template', () => {
  const run = path.join(tmp, 'run');
  const prompts = path.join(tmp, 'prompts.txt');
  const set = [
    '--set', `output.dir=${run}`, '--set', 'training.max_steps=4', '--set', 'output.checkpoint_every=2', '--set', 'output.keep_last=0',
    '--set', `eval.prompts=${prompts}`, '--set', 'eval.every=2', '--set', 'eval.max_new_tokens=4',
  ];
  let first: CliResult;
  let firstSamples: SampleLine[];

  beforeAll(async () => {
    fs.writeFileSync(prompts, 'Name three colors.\nWhat is the capital of France?\n');
    first = await runCli(['train', TINY, ...set]);
    firstSamples = fs.existsSync(path.join(run, 'samples.jsonl')) ? jsonLines<SampleLine>(path.join(run, 'samples.jsonl')) : [];
  });

  it('generates every prompt before the first step, every eval.every steps and at the end, with the settings recorded', async () => {
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).not.toMatch(/report\.html not updated/);
    expect(firstSamples.map((s) => [s.step, s.prompt])).toEqual([
      [0, 'Name three colors.'], [0, 'What is the capital of France?'], [2, 'Name three colors.'], [2, 'What is the capital of France?'],
      [4, 'Name three colors.'], [4, 'What is the capital of France?'],
    ]);
    for (const s of firstSamples) {
      expect(s.settings).toEqual({ template: 'dolly', max_new_tokens: 4, temperature: 0.7, top_p: 0.9, seed: 0 });
      expect(typeof s.output).toBe('string');
    }
    const report = fs.readFileSync(path.join(run, 'report.html'), 'utf8');
    expect(report).toContain('What is the capital of France?');
    expect(report).toContain('generated with template dolly, max new tokens 4, temperature 0.7, top p 0.9, seed 0');
    expect(report).toMatch(/<th>step 4<\/th>/);
  });

  it('prints a time estimate once, after the first steps, and records it', async () => {
    expect(first.stderr.match(/time estimate: about \S+ for the whole run of 4 steps \([\d.]+ s per step after warm-up, with validation and samples\)/g))
      .toHaveLength(1);
    const metrics = jsonLines<{ step: number; estimated_total_s?: number }>(path.join(run, 'metrics.jsonl'));
    expect(metrics.filter((m) => m.estimated_total_s !== undefined).map((m) => m.step)).toEqual([2]);
    expect(fs.readFileSync(path.join(run, 'report.html'), 'utf8')).toMatch(/estimated time \(at step 2\)/);
  });

  it('leaves adapter/ with the PEFT files, a model card and the config, named in the summary', async () => {
    const dir = path.join(run, 'adapter');
    expect(fs.readdirSync(dir).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'config.yaml']);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg['base_model_name_or_path']).toBe(rwkv.path);
    expect(cfg['peft_type']).toBe('LORA');
    const card = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
    expect(card).toContain(`base_model: ${JSON.stringify(rwkv.path)}`);
    expect(card).toContain('- steps: 4 optimizer steps of 2 x 2 blocks');
    expect(card).toMatch(/- train loss: first [\d.]+ \(step 1\), last [\d.]+ \(step 4\)/);
    expect(card).toContain('Held-out loss (response tokens), base model vs this adapter');
    expect(card).toContain('PeftModel.from_pretrained');
    expect(card).toContain('eval:\n  prompts:');
    expect(first.stdout).toMatch(/^ {2}adapter +\S*run\/adapter$/m);
  });

  it('resuming from an earlier checkpoint generates the later samples again, once', async () => {
    const r = await runCli(['train', TINY, ...set, '--resume', path.join(run, 'checkpoint-2')]);
    expect(r.status, r.stderr).toBe(0);
    const samples = jsonLines<SampleLine>(path.join(run, 'samples.jsonl'));
    expect(samples.map((s) => s.step)).toEqual([0, 0, 2, 2, 4, 4]);
    expect(samples).toEqual(firstSamples);
  });

  it('generate --adapter RUN wraps the prompt in the template the run trained with; --template text leaves it as given', async () => {
    const r = await runCli(['generate', rwkv.path, '--adapter', run, '--prompt', 'Name a color.', '--max-new-tokens', '3']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/dolly template, as it was trained/);
    expect(r.stdout).toMatch(/^Below is an instruction.*### Instruction:\nName a color\.\n\n### Response:\n/s);
    const fromFolder = await runCli(['generate', rwkv.path, '--adapter', path.join(run, 'adapter'), '--prompt', 'Name a color.', '--max-new-tokens', '3']);
    expect(fromFolder.status, fromFolder.stderr).toBe(0);
    expect(fromFolder.stdout).toMatch(/### Instruction:\nName a color\./);
    const plain = await runCli(['generate', rwkv.path, '--adapter', run, '--template', 'text', '--prompt', 'Name a color.', '--max-new-tokens', '3']);
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout.startsWith('Name a color.')).toBe(true);
    const base = await runCli(['generate', rwkv.path, '--template', 'dolly', '--prompt', 'Name a color.', '--max-new-tokens', '3']);
    expect(base.status, base.stderr).toBe(0);
    expect(base.stdout).toMatch(/^Below is an instruction/);
  });

  it('export --merged of an adapter whose local base moved says to pass --base', async () => {
    const moved = path.join(tmp, 'moved-adapter');
    fs.cpSync(path.join(run, 'adapter'), moved, { recursive: true });
    const file = path.join(moved, 'adapter_config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(file, JSON.stringify({ ...cfg, base_model_name_or_path: path.join(tmp, 'gone', 'tiny-rwkv') }));
    const r = await runCli(['export', moved, '--merged', path.join(tmp, 'merged')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/gone\/tiny-rwkv \(base_model_name_or_path in adapter_config\.json\), is not there any more; if it moved, pass --base/);
    const ok = await runCli(['export', moved, '--merged', path.join(tmp, 'merged'), '--base', rwkv.path, '--dtype', 'fp32']);
    expect(ok.status, ok.stderr).toBe(0);
  });
});

const COMMIT = '0123456789abcdef0123456789abcdef01234567';

describe.skipIf(!present)('a run on a hub model', () => {
  let hub: FakeHub;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const files = ['config.json', 'tokenizer.json', 'model.safetensors'].map((p) => ({ path: p, content: fs.readFileSync(path.join(rwkv.path, p)) }));
    hub = new FakeHub([{ type: 'model', name: 'ditty-test/tiny-rwkv', refs: { main: COMMIT }, commits: { [COMMIT]: files } }]);
    env = { HF_HOME: path.join(tmp, 'hf-home'), HF_ENDPOINT: await hub.start(), HF_TOKEN: '', HF_HUB_OFFLINE: '' };
  });
  afterAll(async () => {
    await hub.stop();
  });

  it('records the hub id as base_model_name_or_path, not the cache folder', async () => {
    const out = path.join(tmp, 'hub-run');
    const r = await runCli(['train', TINY, '--set', 'model.name_or_path=ditty-test/tiny-rwkv', '--set', `output.dir=${out}`,
      '--set', 'training.max_steps=1'], env);
    expect(r.status, r.stderr).toBe(0);
    for (const dir of ['adapter', 'checkpoint-1']) {
      const cfg = JSON.parse(fs.readFileSync(path.join(out, dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      expect(cfg['base_model_name_or_path']).toBe('ditty-test/tiny-rwkv');
    }
    expect(fs.readFileSync(path.join(out, 'adapter', 'README.md'), 'utf8')).toContain('base_model: "ditty-test/tiny-rwkv"');
  });
});
