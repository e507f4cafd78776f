import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTrainConfig } from '../../src/config/load.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const CONFIGS = path.join(REPO_ROOT, 'configs');

describe('shipped configs', () => {
  const hubConfigs = ['rwkv-14b.yaml', 'rwkv-169m.yaml', 'pythia-70m.yaml', 'dolly-v2-12b.yaml'];

  it('ships the expected files, each commented', () => {
    const files = fs.readdirSync(CONFIGS).filter((f) => f.endsWith('.yaml'));
    expect(files.sort()).toEqual([...hubConfigs, 'tiny.yaml'].sort());
    for (const f of files) expect(fs.readFileSync(path.join(CONFIGS, f), 'utf8')).toMatch(/^# /);
  });

  it.each(hubConfigs)('%s parses', (file) => {
    const c = loadTrainConfig(path.join(CONFIGS, file), [], { cwd: REPO_ROOT });
    expect(c.output.dir).toBe(path.join(REPO_ROOT, 'checkpoints', path.basename(c.model.name_or_path)));
  });

  it('rwkv-14b.yaml is the 2023 recipe', () => {
    const c = loadTrainConfig(path.join(CONFIGS, 'rwkv-14b.yaml'));
    expect(c.model.name_or_path).toBe('RWKV/rwkv-raven-14b');
    expect(c.data).toMatchObject({ dataset: 'databricks/databricks-dolly-15k', file: 'databricks-dolly-15k.jsonl', block_size: 512 });
    expect(c.quantization).toMatchObject({ bits: 4, double_quant: true });
    expect(c.lora).toMatchObject({ r: 8, alpha: 16, dropout: 0.05, target_modules: ['key', 'value', 'receptance'] });
    expect(c.training).toMatchObject({ batch_size: 1, grad_accum: 32, compute_dtype: 'bf16', gradient_checkpointing: false });
    expect(c.backend).toBe('cuda');
  });

  it('dolly-v2-12b.yaml targets query_key_value', () => {
    const c = loadTrainConfig(path.join(CONFIGS, 'dolly-v2-12b.yaml'));
    expect(c.model.name_or_path).toBe('databricks/dolly-v2-12b');
    expect(c.lora.target_modules).toEqual(['query_key_value']);
  });

  it('tiny.yaml resolves its paths from the config folder', () => {
    const model = sharedPath('fixtures', 'tiny-rwkv');
    const data = sharedPath('data', 'dolly-sample.jsonl');
    if (!model.present || !data.present) return;
    const c = loadTrainConfig(path.join(CONFIGS, 'tiny.yaml'));
    expect(c.model.name_or_path).toBe(model.path);
    expect(c.data.dataset).toBe(data.path);
    expect(c.output.dir).toBe(path.join(REPO_ROOT, 'checkpoints/tiny'));
    expect(c.data.block_size).toBe(64);
    expect(c.training).toMatchObject({ batch_size: 2, grad_accum: 2, max_steps: 30, learning_rate: 3e-3 });
    expect(c.quantization.bits).toBe(4);
    expect(c.output.checkpoint_every).toBe(10);
    expect(c.backend).toBe('auto');
  });
});
