import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadTrainConfig, parseTrainConfig, resolvedConfigYaml } from '../../src/config/load.js';
import { InputError } from '../../src/io/errors.js';

const FILE = 'configs/x.yaml';
const MODEL = 'model:\n  name_or_path: RWKV/rwkv-4-169m-pile\n';

/** The problems a config has (one string each); fails the test if it parses. */
function problems(text: string, overrides: string[] = []): readonly string[] {
  try {
    parseTrainConfig(text, FILE, overrides);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(InputError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

/** The single problem of a config. */
function problem(text: string, overrides: string[] = []): string {
  const all = problems(text, overrides);
  expect(all).toHaveLength(1);
  return all[0]!;
}

describe('defaults and resolution', () => {
  it('fills every default from a config naming only the model', () => {
    const c = parseTrainConfig(MODEL, FILE, [], { cwd: '/runs' });
    expect(c.model).toEqual({ name_or_path: 'RWKV/rwkv-4-169m-pile', revision: 'main' });
    expect(c.quantization).toEqual({ bits: 4, double_quant: true, blocksize: 64, skip_modules: [] });
    expect(c.lora).toEqual({ r: 8, alpha: 16, dropout: 0.05, target_modules: null, use_rslora: false });
    expect(c.data).toMatchObject({
      dataset: 'databricks/databricks-dolly-15k', file: 'databricks-dolly-15k.jsonl', format: 'dolly',
      block_size: 512, packing: true, train_on: 'response', validation_fraction: 0.02, on_bad_row: 'skip', shuffle: true,
    });
    expect(c.data.max_rows).toBeUndefined();
    expect(c.training).toMatchObject({
      batch_size: 1, grad_accum: 32, epochs: 1, learning_rate: 2e-4, lr_scheduler: 'constant', warmup_steps: 0,
      weight_decay: 0, adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8, max_grad_norm: 1, seed: 42,
      gradient_checkpointing: false, compute_dtype: 'auto', log_every: 1,
    });
    expect(c.training.max_steps).toBeUndefined();
    expect(c.output).toEqual({ dir: path.resolve('/runs/checkpoints/rwkv-4-169m-pile'), checkpoint_every: 50, keep_last: 3, resume: true });
    expect(c.backend).toBe('auto');
  });

  it('trains on everything by default for the text format', () => {
    expect(parseTrainConfig(`${MODEL}data:\n  format: text\n`, FILE).data.train_on).toBe('all');
  });

  it('treats an empty value as the default', () => {
    const c = parseTrainConfig(`${MODEL}lora:\n  r:\n  target_modules:\ntraining:\n`, FILE);
    expect(c.lora.r).toBe(8);
    expect(c.lora.target_modules).toBeNull();
  });

  describe('paths', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-config-'));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.mkdirSync(path.join(dir, 'models/tiny'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'recipes'));
    fs.writeFileSync(path.join(dir, 'rows.jsonl'), '{}\n');
    const config = path.join(dir, 'recipes/run.yaml');
    fs.writeFileSync(config, [
      'model:', '  name_or_path: ../models/tiny', 'data:', '  dataset: ../rows.jsonl', 'output:', '  dir: out',
    ].join('\n'));

    it('resolves relative paths against the config file\'s folder', () => {
      const c = loadTrainConfig(config, [], { cwd: '/elsewhere' });
      expect(c.model.name_or_path).toBe(path.join(dir, 'models/tiny'));
      expect(c.data.dataset).toBe(path.join(dir, 'rows.jsonl'));
      expect(c.output.dir).toBe(path.join(dir, 'recipes/out'));
    });

    it('resolves --set paths against the working directory', () => {
      const c = loadTrainConfig(config, ['output.dir=ckpt', 'model.name_or_path=models/tiny'], { cwd: dir });
      expect(c.output.dir).toBe(path.join(dir, 'ckpt'));
      expect(c.model.name_or_path).toBe(path.join(dir, 'models/tiny'));
    });

    it('reads a local dataset folder\'s data.file, and checks the data file\'s format', () => {
      fs.mkdirSync(path.join(dir, 'dolly'));
      fs.writeFileSync(path.join(dir, 'dolly/rows.parquet'), '');
      fs.writeFileSync(path.join(dir, 'rows.csv'), '');
      const c = loadTrainConfig(config, ['data.dataset=dolly', 'data.file=rows.parquet'], { cwd: dir });
      expect(c.data.dataset).toBe(path.join(dir, 'dolly'));
      expect(() => loadTrainConfig(config, ['data.dataset=dolly'], { cwd: dir })).toThrow(
        `${config}:3:1: data.file: "databricks-dolly-15k.jsonl" is not in the dataset folder ${path.join(dir, 'dolly')}; expected a file inside it`,
      );
      expect(() => loadTrainConfig(config, ['data.dataset=rows.csv'], { cwd: dir })).toThrow(
        '--set data.dataset=rows.csv: data.dataset: "rows.csv" is not a .jsonl, .json or .parquet file; expected a data file in one of those formats',
      );
    });

    it('says where a missing local path was looked for', () => {
      fs.writeFileSync(config, 'model:\n  name_or_path: ../models/nope\n');
      expect(() => loadTrainConfig(config)).toThrow(
        `${config}:2:17: model.name_or_path: "../models/nope" does not exist (resolved to ${path.join(dir, 'models/nope')}); expected an existing folder`,
      );
    });
  });

  it('round-trips through resolvedConfigYaml', () => {
    const c = parseTrainConfig(`${MODEL}lora:\n  target_modules: [key]\ntraining:\n  max_steps: 7\n`, FILE);
    const yaml = resolvedConfigYaml(c);
    expect(yaml).toMatch(/^# ditty train config, resolved/);
    expect(yaml.indexOf('model:')).toBeLessThan(yaml.indexOf('backend:'));
    expect(parseTrainConfig(yaml, 'resolved.yaml')).toEqual(c);
  });
});

describe('--set overrides', () => {
  it('parses values as YAML and applies them in order', () => {
    const c = parseTrainConfig(MODEL, FILE, [
      'lora.target_modules=[key,value]', 'training.max_steps=10', 'data.packing=false', 'training.learning_rate=1e-4',
      'training.max_steps=12', 'model.revision=',
    ]);
    expect(c.lora.target_modules).toEqual(['key', 'value']);
    expect(c.training.max_steps).toBe(12);
    expect(c.data.packing).toBe(false);
    expect(c.training.learning_rate).toBe(1e-4);
    expect(c.model.revision).toBe('main');
  });

  it('rejects an unknown key with a suggestion, citing --set', () => {
    expect(problem(MODEL, ['lora.alpah=3'])).toBe(
      '--set lora.alpah=3: lora.alpah: unknown key; allowed keys in lora: r, alpha, dropout, target_modules, use_rslora (did you mean "alpha"?)',
    );
    expect(problem(MODEL, ['trainig.seed=1'])).toMatch(/^--set trainig.seed=1: trainig: unknown key; .*\(did you mean "training"\?\)$/);
  });

  it('rejects a bad value, citing --set', () => {
    expect(problem(MODEL, ['lora.r=eight'])).toBe('--set lora.r=eight: lora.r: "eight" is a string; expected an integer ≥ 1');
  });

  it('rejects malformed overrides', () => {
    expect(problems(MODEL, ['max_steps', 'lora.target_modules=[key'])).toEqual([
      '--set max_steps: expected key.path=value, e.g. --set training.max_steps=10',
      expect.stringMatching(/^--set lora.target_modules=\[key: the value is not valid YAML: /),
    ]);
  });
});

describe('errors name file:line:col, the key, the value and what is allowed', () => {
  it('bad enum, with a suggestion', () => {
    expect(problem(`${MODEL}training:\n  lr_scheduler: cosin\n`)).toBe(
      'configs/x.yaml:4:17: training.lr_scheduler: "cosin" is not allowed; expected one of constant, linear, cosine (did you mean "cosine"?)',
    );
  });

  it('unknown key, with a suggestion from the same section', () => {
    expect(problem(`${MODEL}lora:\n  r: 8\n  alpah: 16\n`)).toBe(
      'configs/x.yaml:5:3: lora.alpah: unknown key; allowed keys in lora: r, alpha, dropout, target_modules, use_rslora (did you mean "alpha"?)',
    );
  });

  it('unknown section, with a suggestion', () => {
    expect(problem(`${MODEL}trainig:\n  seed: 1\n`)).toBe(
      'configs/x.yaml:3:1: trainig: unknown key; allowed top-level keys: model, quantization, lora, data, training, output, eval, backend (did you mean "training"?)',
    );
  });

  it('a key from another section or another tool points at ditty\'s key', () => {
    expect(problem(`${MODEL}training:\n  block_size: 256\n`)).toMatch(/^configs\/x.yaml:4:3: training.block_size: unknown key; .*\(did you mean "data.block_size"\?\)$/);
    expect(problem(`${MODEL}learning_rate: 1.0e-4\n`)).toMatch(/^configs\/x.yaml:3:1: learning_rate: .*\(did you mean "training.learning_rate"\?\)$/);
    expect(problem(`${MODEL}training:\n  gradient_accumulation_steps: 4\n`)).toMatch(/\(did you mean "grad_accum"\?\)$/);
    expect(problem(`${MODEL}lora.r: 4\n`)).toMatch(/^configs\/x.yaml:3:1: lora.r: unknown key; .*\(write dotted keys nested: "lora:" with "r:" indented under it\)$/);
  });

  it('wrong type', () => {
    expect(problem(`${MODEL}lora:\n  r: "eight"\n`)).toBe('configs/x.yaml:4:6: lora.r: "eight" is a string; expected an integer ≥ 1');
    expect(problem(`${MODEL}lora:\n  r: "8"\n`)).toBe(
      'configs/x.yaml:4:6: lora.r: "8" is a string; expected an integer ≥ 1 (remove the quotes to make it a number)',
    );
    expect(problem(`${MODEL}data:\n  packing: yes\n`)).toBe(
      'configs/x.yaml:4:12: data.packing: "yes" is a string; expected true or false (YAML 1.2: write true or false)',
    );
    expect(problem(`${MODEL}lora: 5\n`)).toBe(
      'configs/x.yaml:3:7: lora: 5 is a number; expected a mapping with keys r, alpha, dropout, target_modules, use_rslora',
    );
  });

  it('out of range', () => {
    expect(problem(`${MODEL}lora:\n  r: 0\n`)).toBe('configs/x.yaml:4:6: lora.r: 0 is too small; expected an integer ≥ 1');
    expect(problem(`${MODEL}data:\n  block_size: -5\n`)).toBe('configs/x.yaml:4:15: data.block_size: -5 is too small; expected an integer ≥ 1');
    expect(problem(`${MODEL}lora:\n  dropout: 1.5\n`)).toBe('configs/x.yaml:4:12: lora.dropout: 1.5 is too large; expected a number ≥ 0 and < 1');
    expect(problem(`${MODEL}training:\n  learning_rate: 0\n`)).toBe(
      'configs/x.yaml:4:18: training.learning_rate: 0 is too small; expected a number > 0',
    );
    expect(problem(`${MODEL}lora:\n  target_modules: []\n`)).toBe(
      'configs/x.yaml:4:19: lora.target_modules: [] is an empty list; expected a non-empty list of names',
    );
  });

  it('not an integer', () => {
    expect(problem(`${MODEL}training:\n  grad_accum: 2.5\n`)).toBe(
      'configs/x.yaml:4:15: training.grad_accum: 2.5 is not an integer; expected an integer ≥ 1',
    );
  });

  it('quantization.bits other than 4 or 16', () => {
    expect(problem(`${MODEL}quantization:\n  bits: 8\n`)).toBe(
      'configs/x.yaml:4:9: quantization.bits: 8 is not allowed; expected 4 (NF4) or 16 (no quantization)',
    );
  });

  it('blocksize not a power of two', () => {
    expect(problem(`${MODEL}quantization:\n  blocksize: 100\n`)).toBe(
      'configs/x.yaml:4:14: quantization.blocksize: 100 is not a power of two; expected a power of two from 32 to 4096',
    );
    expect(problem(`${MODEL}quantization:\n  blocksize: 8192\n`)).toBe(
      'configs/x.yaml:4:14: quantization.blocksize: 8192 is too large; expected a power of two from 32 to 4096',
    );
  });

  it('missing required key', () => {
    expect(problem('model:\n  revision: main\n')).toBe(
      'configs/x.yaml:1:1: model.name_or_path: required key is missing; expected a local model folder or a hub repo id such as RWKV/rwkv-4-169m-pile',
    );
    expect(problem('model:\n  name_or_path:\n')).toMatch(/^configs\/x.yaml:2:3: model.name_or_path: required key is missing; /);
    expect(problem('lora:\n  r: 4\n')).toMatch(/^configs\/x.yaml:1:1: model.name_or_path: required key is missing; /);
  });

  it('empty file', () => {
    const message = 'configs/x.yaml:1:1: the config is empty; expected a mapping with at least model.name_or_path';
    expect(problem('')).toBe(message);
    expect(problem('# only a comment\n')).toBe(message);
  });

  it('top level not a mapping', () => {
    expect(problem('# a list\n- model\n- lora\n')).toBe(
      'configs/x.yaml:2:1: the config must be a mapping of model, quantization, lora, data, training, output, eval, backend; got a list',
    );
  });

  it('YAML syntax errors', () => {
    expect(problem('model:\n  name_or_path: [a, b\nlora: {}\n')).toMatch(/^configs\/x.yaml:3:1: YAML syntax error: /);
    expect(problem(`${MODEL}lora:\n  r: 4\n  r: 8\n`)).toBe('configs/x.yaml:5:3: YAML syntax error: Map keys must be unique');
  });

  it('checks across keys', () => {
    expect(problem(`${MODEL}data:\n  validation_fraction: 0\ntraining:\n  eval_every: 10\n`)).toBe(
      'configs/x.yaml:6:15: training.eval_every: 10 needs a validation set, but data.validation_fraction is 0; expected data.validation_fraction > 0 or no eval_every',
    );
    expect(problem(`${MODEL}data:\n  format: text\n  train_on: response\n`)).toBe(
      'configs/x.yaml:5:13: data.train_on: "response" needs data.format dolly (the text format has no response); expected all',
    );
  });

  it('a name that is neither a path nor a hub id', () => {
    expect(problem('model:\n  name_or_path: my model\n')).toMatch(
      /^configs\/x.yaml:2:17: model.name_or_path: "my model" is neither an existing local path nor a hub repo id \(/,
    );
  });

  it('reports every problem at once, in file order', () => {
    const all = problems([
      'model:', '  name_or_path: RWKV/rwkv-4-169m-pile', 'lora:', '  r: 0', '  dropout: 2',
      'training:', '  lr_scheduler: cosin', '  grad_accum: 2.5', 'backend: gpu',
    ].join('\n'));
    expect(all.map((p) => p.split(': ')[0])).toEqual([
      'configs/x.yaml:4:6', 'configs/x.yaml:5:12', 'configs/x.yaml:7:17', 'configs/x.yaml:8:15', 'configs/x.yaml:9:10',
    ]);
    expect(all[4]).toBe('configs/x.yaml:9:10: backend: "gpu" is not allowed; expected one of auto, cuda, cpu, wasm, js, tensorflow (did you mean "cuda"?)');
  });

  it('a config file that cannot be read', () => {
    expect(() => loadTrainConfig('configs/does-not-exist.yaml')).toThrow(
      new InputError('configs/does-not-exist.yaml: cannot read the config: no such file'),
    );
  });
});
