import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A run folder with a metrics.jsonl of `steps` steps (validation every 10), a config, data stats and samples. */
export function syntheticRun(steps = 40, name = 'synthetic'): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-report-')), name);
  fs.mkdirSync(dir);
  const lines = Array.from({ length: steps }, (_, i) => {
    const step = i + 1;
    return JSON.stringify({
      step, loss: 3 + 2 * Math.exp(-step / 10) + 0.1 * Math.sin(step), lr: step <= 5 ? 1e-3 * step / 5 : 1e-3, grad_norm: 1 + 0.2 * Math.cos(step),
      tokens: 512, micro_batches: 2, tokens_per_s: 400 + step, elapsed: step * 0.5, epoch: step / steps,
      ...(step % 10 === 0 ? { val_loss: 3.2 + Math.exp(-step / 10) } : {}),
      ...(step === 2 ? { estimated_total_s: 21 } : {}),
    });
  });
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${lines.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'config.yaml'), 'model:\n  name_or_path: some/<model>\ntraining:\n  max_steps: 40\n');
  fs.writeFileSync(path.join(dir, 'data-stats.json'), JSON.stringify({ rowsRead: 406, trainBlocks: 919, paddingFraction: 0.001, trainOn: 'response' }));
  fs.writeFileSync(path.join(dir, 'samples.jsonl'), [
    { step: 10, prompt: 'What is <b>NF4</b>?', output: 'A four-bit & normal float.' },
    { step: 20, prompt: 'What is <b>NF4</b>?', output: 'A 4-bit data type for normally distributed weights.', settings: { template: 'dolly', temperature: 0.7, top_p: 0.9, seed: 0, max_new_tokens: 64 } },
  ].map((s) => JSON.stringify(s)).join('\n') + '\n');
  return dir;
}
