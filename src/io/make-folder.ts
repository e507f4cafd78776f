import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { faultPoint } from './fault-injection.js';

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/**
 * mkdir -p. Node's own ({ recursive: true }) loops forever where mkdir(2) answers ENOENT although
 * the parent exists (anywhere under /proc), so here each level is tried at most twice and the
 * error of the last try is thrown, with the path.
 */
export async function makeFolder(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  try {
    faultPoint('mkdir', abs);
    await fsp.mkdir(abs);
    return;
  } catch (err) {
    if (code(err) === 'EEXIST' && (await fsp.stat(abs)).isDirectory()) return;
    if (code(err) !== 'ENOENT' || path.dirname(abs) === abs) throw err;
  }
  await makeFolder(path.dirname(abs));
  try {
    faultPoint('mkdir', abs);
    await fsp.mkdir(abs);
  } catch (err) {
    if (code(err) !== 'EEXIST' || !(await fsp.stat(abs)).isDirectory()) throw err;
  }
}

/** makeFolder, synchronously. */
export function makeFolderSync(dir: string): void {
  const abs = path.resolve(dir);
  try {
    faultPoint('mkdir', abs);
    fs.mkdirSync(abs);
    return;
  } catch (err) {
    if (code(err) === 'EEXIST' && fs.statSync(abs).isDirectory()) return;
    if (code(err) !== 'ENOENT' || path.dirname(abs) === abs) throw err;
  }
  makeFolderSync(path.dirname(abs));
  try {
    faultPoint('mkdir', abs);
    fs.mkdirSync(abs);
  } catch (err) {
    if (code(err) !== 'EEXIST' || !fs.statSync(abs).isDirectory()) throw err;
  }
}
