import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTrainConfig } from '../../src/config/index.js';
import { TrainConfigSchema, type TrainConfig, type TrainConfigInput } from '../../src/config/schema.js';
import { GENERATION_TEMPLATES } from '../../src/data/templates.js';
import { generationBudget, StopText } from '../../src/generate/generate.js';
import { InputError } from '../../src/io/errors.js';
import { parseModelConfig, type ModelConfig } from '../../src/models/config.js';
import { remainingSeconds, roundsBetween } from '../../src/train/estimate.js';
import { modelCard } from '../../src/train/final-adapter.js';
import { checkBlockSize, checkEpochs, estimateMemory, renderBlock } from '../../src/train/preflight.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import type { LoraConfig } from '../../src/lora/config.js';
import { readModelConfig } from '../../src/models/config.js';
import { sharedPath } from '../helpers/shared.js';
import { readPrompts } from '../../src/train/samples.js';
import { reportHtml } from '../../src/report/html.js';
import { loadReportInput } from '../../src/report/run-report.js';
import { syntheticRun } from '../report/synthetic-run.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-preflight-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(input: Partial<TrainConfigInput> = {}): TrainConfig {
  const parsed = TrainConfigSchema.parse({ model: { name_or_path: 'org/model' }, ...input });
  return { ...parsed, output: { ...parsed.output, dir: tmp } };
}

const neox = parseModelConfig(JSON.stringify({ model_type: 'gpt_neox', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4,
  intermediate_size: 64, vocab_size: 100, max_position_embeddings: 256 }), 'neox/config.json') as ModelConfig;
const rwkv = parseModelConfig(JSON.stringify({ model_type: 'rwkv', hidden_size: 32, num_hidden_layers: 2, vocab_size: 100, context_length: 256 }),
  'rwkv/config.json') as ModelConfig;

describe('block_size against the model context', () => {
  it('is an error past GPT-NeoX max_position_embeddings that names the option that forces it', () => {
    expect(checkBlockSize(config({ data: { block_size: 256 } }), neox)).toBeUndefined();
    expect(() => checkBlockSize(config({ data: { block_size: 257 } }), neox)).toThrow(InputError);
    expect(() => checkBlockSize(config({ data: { block_size: 257 } }), neox)).toThrow(/max_position_embeddings.*data\.allow_long_blocks: true/);
    expect(checkBlockSize(config({ data: { block_size: 300, allow_long_blocks: true } }), neox)).toMatch(/allow_long_blocks is set/);
  });

  it('is a warning past RWKV context_length', () => {
    expect(checkBlockSize(config({ data: { block_size: 256 } }), rwkv)).toBeUndefined();
    expect(checkBlockSize(config({ data: { block_size: 512 } }), rwkv)).toMatch(/beyond the 256 tokens .*\(context_length\)/);
  });
});

describe('max_steps against the data', () => {
  it('warns when max_steps is more than 10 epochs', () => {
    // 100 blocks, 2 x 5 per step: 10 steps per epoch
    const c = (steps: number): TrainConfig => config({ training: { max_steps: steps, batch_size: 2, grad_accum: 5 } });
    expect(checkEpochs(c(100), 100)).toBeUndefined();
    expect(checkEpochs(c(101), 100)).toMatch(/max_steps 101 is 10\.1 epochs of the 100 training blocks/);
    expect(checkEpochs(config({ training: { epochs: 20 } }), 100)).toBeUndefined();
  });
});

describe('the time estimate', () => {
  it('counts rounds of periodic work in (from, to], the last step included once', () => {
    expect(roundsBetween(0, 30, 10)).toBe(3);
    expect(roundsBetween(1, 25, 10)).toBe(3);
    expect(roundsBetween(10, 10, 10)).toBe(0);
    expect(roundsBetween(0, 7, undefined)).toBe(1);
  });

  it('projects steps, validation (a third of a step per block) and samples', () => {
    expect(remainingSeconds({ stepSeconds: 2, remainingSteps: 10, blocksPerStep: 4, validationBlocks: 6, validationRounds: 2, sampleRounds: 3, sampleSeconds: 5 }))
      .toBeCloseTo(20 + 2 * 6 * (0.5 / 3) + 15);
    expect(remainingSeconds({ stepSeconds: 1, remainingSteps: 5, blocksPerStep: 1, validationBlocks: 0, validationRounds: 0, sampleRounds: 2 })).toBe(5);
  });

  it('shows in the report as a tile', () => {
    const html = reportHtml(loadReportInput(syntheticRun(10, 'estimate')));
    expect(html).toMatch(/estimated time \(at step 2\)<\/div><div class="v">21 s</);
    expect(html).toContain('generated with template dolly, temperature 0.7, top p 0.9, seed 0, max new tokens 64');
  });
});

describe('generation past the model length', () => {
  it('clamps the new tokens of GPT-NeoX with a warning, and refuses a prompt that fills the context', () => {
    expect(generationBudget(neox, 100, 156)).toEqual({ maxNewTokens: 156 });
    const b = generationBudget(neox, 200, 100);
    expect(b.maxNewTokens).toBe(56);
    expect(b.warning).toMatch(/lowered from 100 to 56.*256 positions \(max_position_embeddings\)/);
    expect(() => generationBudget(neox, 256, 1)).toThrow(/the prompt is 256 tokens; .* at most 256/);
  });

  it('warns for RWKV past context_length without clamping', () => {
    const b = generationBudget(rwkv, 200, 100);
    expect(b.maxNewTokens).toBe(100);
    expect(b.warning).toMatch(/past the 256 tokens .*\(context_length\)/);
  });
});

describe('templates for generation', () => {
  it('dolly wraps the prompt as training rendered it and stops at "### End"', () => {
    const t = GENERATION_TEMPLATES.dolly;
    expect(t.wrap('Name a color.')).toMatch(/^Below is an instruction.*\n\n### Instruction:\nName a color\.\n\n### Response:\n$/s);
    expect(GENERATION_TEMPLATES.text.wrap('abc')).toBe('abc');
  });

  it('StopText holds back what could start the stop text and cuts at it, across deltas', () => {
    const s = new StopText('### End');
    const out = ['Blue', ' and red.\n\n#', '## E', 'nd more'].map((d) => s.push(d));
    expect(out.join('')).toBe('Blue and red.');
    expect(s.done).toBe(true);
    expect(s.push('x') + s.flush()).toBe('');
    const t = new StopText('### End');
    expect(t.push('a #') + t.push('b') + t.flush()).toBe('a #b');
    const u = new StopText('### End');
    expect(u.push('one\n\n') + u.push('two\n') + u.flush()).toBe('one\n\ntwo\n');
    const none = new StopText(undefined);
    expect(none.push('### End')).toBe('### End');
  });
});

describe('eval.prompts', () => {
  it('a file is relative to the config file and must exist; the sampling settings have their defaults', () => {
    const dir = path.join(tmp, 'cfg');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'p.txt'), 'Hello\n');
    const file = path.join(dir, 'train.yaml');
    fs.writeFileSync(file, 'model:\n  name_or_path: org/model\neval:\n  prompts: p.txt\n');
    const c = loadTrainConfig(file, []);
    expect(c.eval).toEqual({ prompts: path.join(dir, 'p.txt'), every: 50, max_new_tokens: 64, temperature: 0.7, top_p: 0.9, seed: 0 });
    expect(() => loadTrainConfig(file, ['eval.prompts=missing.txt'])).toThrow(/eval\.prompts: "missing\.txt" does not exist/);
    expect(loadTrainConfig(file, ['eval.prompts=[a, b]']).eval.prompts).toEqual(['a', 'b']);
  });


  it('reads a list as is, and a file as one prompt per non-blank line', () => {
    expect(readPrompts(['a', 'b'])).toEqual(['a', 'b']);
    const file = path.join(tmp, 'prompts.txt');
    fs.writeFileSync(file, 'Name a color.\r\n\n  What is NF4?  \n');
    expect(readPrompts(file)).toEqual(['Name a color.', 'What is NF4?']);
    fs.writeFileSync(file, '\n \n');
    expect(() => readPrompts(file)).toThrow(/holds no prompt/);
    expect(() => readPrompts(path.join(tmp, 'missing.txt'))).toThrow(/eval\.prompts: cannot read/);
  });
});

describe('a block as the model sees it', () => {
  it('marks the text that counts in the loss and counts the padding', () => {
    // text tokens 1..5, loss on 4 and 5, then 2 padding positions
    const block = {
      input: Int32Array.from([1, 2, 3, 4, 5, 0, 0]), target: Int32Array.from([2, 3, 4, 5, 0, 0, 0]),
      weight: Uint8Array.from([0, 0, 1, 1, 0, 0, 0]), targets: 2, padding: 3,
    };
    const decode = (ids: readonly number[]): string => ids.map((i) => `t${i}`).join(' ');
    expect(renderBlock(block, decode)).toBe('t1 t2 t3▶t4 t5◀\n(+ 3 padding positions, not in the loss)');
  });
});

describe('the model card', () => {
  it('names the base, the data, the steps and losses, the config, and how to load it with PEFT and ditty', () => {
    const c = config({ data: { dataset: 'databricks/databricks-dolly-15k' }, training: { max_steps: 2 } });
    const card = modelCard({
      config: c, configYaml: 'model:\n  name_or_path: org/model\n', baseModel: 'org/model', trainableParameters: 1234,
      stats: { rowsRead: 10, rowsSkipped: 0, trainRows: 9, validationRows: 1, examples: 10, totalTokens: 100, meanLength: 10, medianLength: 10,
        maxLength: 12, longExamples: 0, trainBlocks: 4, validationBlocks: 1, emptyBlocksDropped: 0, trainTargets: 50, validationTargets: 5,
        paddingFraction: 0, blockSize: 512, packing: true, trainOn: 'response' },
      entries: [{ step: 1, loss: 3, tokens: 10 }, { step: 2, loss: 2.5, tokens: 10, val_loss: 2.7 }],
    });
    expect(card).toMatch(/^---\nbase_model: "org\/model"\nlibrary_name: peft\n/);
    expect(card).toContain('datasets:\n- "databricks/databricks-dolly-15k"');
    expect(card).toContain('- steps: 2 optimizer steps');
    expect(card).toContain('- train loss: first 3.0000 (step 1), last 2.5000 (step 2), best 2.5000 (step 2)');
    expect(card).toContain('- validation loss: first 2.7000 (step 2)');
    expect(card).toContain('PeftModel.from_pretrained(base, "path/to/this/folder")');
    expect(card).toContain('### Instruction:\\nName three primary colors.');
    expect(card).toContain('ditty generate org/model --adapter path/to/this/folder');
    expect(card).toContain('```yaml\nmodel:\n  name_or_path: org/model\n```');
  });
});

const tinyRwkv = sharedPath('fixtures', 'tiny-rwkv');

describe.skipIf(!tinyRwkv.present)('the memory estimate', () => {
  it('counts the LoRA parameters the engine trains, NF4 linears at about 4.5 bits, and more activations without checkpointing', async () => {
    const model = readModelConfig(path.join(tinyRwkv.path, 'config.json'));
    const source = await openCheckpoint(tinyRwkv.path);
    try {
      const lora: LoraConfig = { r: 8, alpha: 16, dropout: 0, targetModules: ['key', 'value', 'receptance'], useRslora: false, bias: 'none', fanInFanOut: false };
      const c = config({ data: { block_size: 64 }, training: { batch_size: 2 } });
      const nf4 = estimateMemory(c, model, source, lora, 'none');
      // what `ditty train configs/tiny.yaml` reports the engine holds
      expect(nf4.trainableParameters).toBe(13_824);
      expect(nf4.adapterBytes).toBe(16 * 13_824);
      const float = estimateMemory(config({ data: { block_size: 64 }, training: { batch_size: 2 }, quantization: { bits: 16 } }), model, source, lora, 'none');
      expect(nf4.baseBytes).toBeLessThan(float.baseBytes);
      expect(estimateMemory(c, model, source, lora, 'full').activationBytes).toBeLessThan(nf4.activationBytes);
      expect(nf4.totalBytes).toBe(nf4.baseBytes + nf4.adapterBytes + nf4.activationBytes);
    } finally {
      source.close();
    }
  });
});
