/** Output folders of exports: refused when in use, filled under a temporary name, then renamed into place. */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { tempNameFor, writeFileAtomic } from '../io/atomic.js';
import { InputError } from '../io/errors.js';

/** Whether `inner` is `outer` or lies inside it (both resolved through symlinks where they exist). */
function isInside(inner: string, outer: string): boolean {
  const real = (p: string): string => {
    try { return fs.realpathSync(p); } catch { return path.resolve(p); }
  };
  const rel = path.relative(real(outer), real(inner));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Throws an InputError when `out` cannot be written: it is a file, it is a non-empty folder and
 * `force` is not set, or it is (or contains) one of `inputs` (which replacing it would destroy).
 */
export function checkOutputFolder(out: string, force: boolean, inputs: readonly string[] = []): void {
  const st = fs.statSync(out, { throwIfNoEntry: false });
  if (st === undefined) return;
  if (!st.isDirectory()) throw new InputError(`${out}: exists and is not a folder; choose another output folder`);
  const input = inputs.find((i) => isInside(i, out));
  if (input !== undefined) throw new InputError(`${out}: the output folder would replace the input ${input}; choose another output folder`);
  if (!force && fs.readdirSync(out).length > 0) {
    throw new InputError(`${out}: the output folder exists and is not empty; pass --force to replace it, or choose another folder`);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try { await h.sync(); } catch { /* some filesystems refuse directory fsync */ } finally { await h.close(); }
}

/**
 * Creates a temporary sibling of `out`, lets `fill` write into it, then renames it to `out`. An
 * existing `out` (already checked with checkOutputFolder) is moved aside and deleted only after the
 * new folder is in place; on failure the temporary folder is removed and `out` is left as it was.
 */
export async function writeFolderAtomic<T>(out: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = tempNameFor(path.resolve(out));
  await fsp.mkdir(tmp, { recursive: true });
  let result: T;
  try {
    result = await fill(tmp);
    await fsyncDir(tmp);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const old = fs.existsSync(out) ? tempNameFor(path.resolve(out)) : undefined;
  if (old !== undefined) await fsp.rename(out, old);
  try {
    await fsp.rename(tmp, out);
  } catch (err) {
    if (old !== undefined) await fsp.rename(old, out).catch(() => undefined);
    await fsp.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await fsyncDir(path.dirname(path.resolve(out)));
  if (old !== undefined) await fsp.rm(old, { recursive: true, force: true });
  return result;
}

/** Copies `src` to `dst` through a temporary name, fsynced; returns the bytes copied. */
export async function copyFileDurable(src: string, dst: string): Promise<number> {
  let bytes = 0;
  await writeFileAtomic(dst, async (h) => {
    for await (const chunk of fs.createReadStream(src)) {
      const data = chunk as Buffer;
      for (let done = 0; done < data.byteLength;) {
        const { bytesWritten } = await h.write(data, done, data.byteLength - done, bytes + done);
        done += bytesWritten;
      }
      bytes += data.byteLength;
    }
  });
  return bytes;
}
