// Builds the native engine during `npm ci`. A machine that cannot build it (no compiler, no Node
// headers) still gets a working ditty on the tfjs engine: the reason is written where `ditty env`
// and the engine loader read it, and the install succeeds.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reasonFile = path.join(root, 'build', 'native-unavailable.txt');

function unavailable(reason) {
  fs.mkdirSync(path.dirname(reasonFile), { recursive: true });
  fs.writeFileSync(reasonFile, `${reason}\n`);
  process.stderr.write(`ditty: the native engine was not built (${reason}); ditty will run on the tfjs engine (backend wasm)\n`);
  process.exit(0);
}

if (process.env.DITTY_SKIP_NATIVE === '1') unavailable('DITTY_SKIP_NATIVE=1 was set at install time');
const gyp = process.env.npm_config_node_gyp
  ?? path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
if (!fs.existsSync(gyp)) unavailable(`node-gyp not found (looked for ${gyp})`);
fs.rmSync(reasonFile, { force: true });
const jobs = String(Math.max(1, Math.min(4, (await import('node:os')).availableParallelism())));
// Node's own headers when the system has them (no download: the install may be offline)
const nodedir = process.env.npm_config_nodedir
  ?? [path.join(path.dirname(process.execPath), '..'), '/usr'].find((d) => fs.existsSync(path.join(d, 'include', 'node', 'common.gypi')));
const args = [gyp, 'rebuild', '--jobs', jobs, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  const lines = (result.stderr ?? '').split('\n').filter((l) => /error/i.test(l)).slice(0, 3).join(' | ');
  process.stderr.write(result.stderr ?? '');
  unavailable(`node-gyp rebuild failed: ${lines || `exit ${result.status}`}`);
}
