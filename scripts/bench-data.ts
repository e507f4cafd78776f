/**
 * Throughput of the data pipeline (load + template + tokenize + pack) on the Dolly sample.
 *   npx tsc -p . && node dist/scripts/bench-data.js [--repeat 10] [--block-size 512]
 * The sample is run through prepareDataset `repeat` times after one warm-up run; tokenizer loading is timed apart.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TrainConfigSchema } from '../src/config/schema.js';
import { prepareDataset } from '../src/data/prepare.js';
import { formatDataStats } from '../src/data/stats.js';
import { loadTokenizer } from '../src/tokenizer/tokenizer.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const sample = path.resolve(repoRoot, '../shared/data/dolly-sample.jsonl');
const tokenizerFile = path.resolve(repoRoot, '../shared/data/gpt-neox-20b-tokenizer.json');
if (!fs.existsSync(sample) || !fs.existsSync(tokenizerFile)) {
  console.error(`needs ${sample} and ${tokenizerFile}`);
  process.exit(1);
}
const repeat = arg('--repeat', 10);
const blockSize = arg('--block-size', 512);

console.log(`command: npx tsc -p . && node dist/scripts/bench-data.js --repeat ${repeat} --block-size ${blockSize}`);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${new Date().toISOString().slice(0, 10)}`);
let t0 = performance.now();
const tok = loadTokenizer(tokenizerFile);
console.log(`tokenizer load: ${((performance.now() - t0) / 1000).toFixed(2)} s`);

// the config a run would hand prepareDataset, the rest of it the schema's defaults
const options = TrainConfigSchema.parse({
  model: { name_or_path: 'unused' }, data: { dataset: sample, block_size: blockSize, validation_fraction: 0.05 },
});
const warm = await prepareDataset(options, tok);
console.log(formatDataStats(warm.stats));
t0 = performance.now();
for (let i = 0; i < repeat; i++) await prepareDataset(options, tok);
const seconds = (performance.now() - t0) / 1000;
const rows = warm.stats.rowsRead * repeat;
const tokens = warm.stats.totalTokens * repeat;
console.log(`${rows} rows, ${tokens} tokens in ${seconds.toFixed(2)} s: ${(rows / seconds).toFixed(0)} rows/s, `
  + `${(tokens / seconds / 1000).toFixed(0)}k tokens/s (load + template + tokenize + pack, one thread)`);
