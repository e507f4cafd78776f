/**
 * Forward-pass speed of `ditty eval` on random-weight model shapes, and weight load time per GB.
 *   npm run build && node dist/scripts/bench-eval.js [--shapes rwkv-169m,pythia-160m] [--tokens 512] [--backend wasm]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODEL_SHAPES } from '../src/bench/shapes.js';
import { writeRandomModel } from '../src/bench/random-model.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const shapes = (args.get('shapes') ?? 'rwkv-169m,pythia-160m').split(',');
const tokens = Number(args.get('tokens') ?? 512);
const backend = args.get('backend') ?? 'wasm';
const tokenizer = path.resolve(repoRoot, '../shared/data/gpt-neox-20b-tokenizer.json');
const dolly = path.resolve(repoRoot, '../shared/data/dolly-sample.jsonl');
if (!fs.existsSync(tokenizer) || !fs.existsSync(dolly)) {
  console.error(`needs ${tokenizer} and ${dolly}`);
  process.exit(1);
}
// Real text: Dolly responses, far more than `tokens` tokens; eval scores the first window.
const text = fs.readFileSync(dolly, 'utf8').split('\n').filter(Boolean)
  .map((l) => (JSON.parse(l) as { response: string }).response).join('\n\n');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-bench-eval-'));
const textFile = path.join(tmp, 'text.txt');
fs.writeFileSync(textFile, text.slice(0, tokens * 8));
console.log(`command: node dist/scripts/bench-eval.js --shapes ${shapes.join(',')} --tokens ${tokens} --backend ${backend}`);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${new Date().toISOString().slice(0, 10)}`);
try {
  for (const shape of shapes) {
    const config = MODEL_SHAPES[shape];
    if (!config) throw new Error(`unknown shape ${shape}; known: ${Object.keys(MODEL_SHAPES).join(', ')}`);
    const folder = path.join(tmp, shape);
    const bytes = await writeRandomModel(folder, config, { tokenizer, maxShardBytes: 256 * 2 ** 20 });
    const params = bytes / 4;
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/ditty.js'), 'eval', folder, '--file', textFile,
      '--window', String(tokens), '--json', '--backend', backend], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`eval failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { tokens_per_s: number; seconds: number; load_seconds: number; windows: number; predicted_tokens: number };
    const scored = out.predicted_tokens + out.windows;
    console.log(`${shape.padEnd(12)} ${(params / 1e6).toFixed(1)}M params  forward ${(scored / out.seconds).toFixed(1)} tokens/s `
      + `(${scored} tokens in ${out.seconds.toFixed(2)} s, ${((2 * params * scored) / out.seconds / 1e9).toFixed(1)} GFLOP/s at 2N/token)  `
      + `load ${(out.load_seconds / (bytes / 1e9)).toFixed(2)} s/GB (${(bytes / 1e9).toFixed(2)} GB F32 safetensors, ${backend})`);
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
