// A private build of the addon for one developer's kernel families while others edit theirs:
//   node scripts/build-native-dev.mjs OUT_DIR gemm,nf4,lora
// copies binding.gyp and native/ to OUT_DIR, builds only the core and those families there, and
// prints the .node path; run tests with DITTY_NATIVE_ADDON=<that path>.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [out, families] = process.argv.slice(2);
if (!out || !families) {
  process.stderr.write('usage: node scripts/build-native-dev.mjs OUT_DIR family[,family...]\n');
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });
fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(out, 'binding.gyp'));
fs.rmSync(path.join(out, 'native'), { recursive: true, force: true });
fs.cpSync(path.join(root, 'native'), path.join(out, 'native'), { recursive: true });
if (!fs.existsSync(path.join(out, 'node_modules'))) fs.symlinkSync(path.join(root, 'node_modules'), path.join(out, 'node_modules'));
const gyp = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const r = spawnSync(process.execPath, [gyp, fs.existsSync(path.join(out, 'build')) ? 'build' : 'rebuild', '--nodedir=/usr', '--jobs', '2'],
  { cwd: out, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DITTY_NATIVE_ONLY: families } });
if (r.status !== 0) process.exit(r.status ?? 1);
process.stdout.write(`${path.join(out, 'build', 'Release', 'ditty_native.node')}\n`);
