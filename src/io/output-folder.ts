/**
 * Output folders (exports, quantized checkpoints, adapters, checkpoints): refused when in use, filled
 * under a temporary name, then renamed into place; deleted by renaming away first.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fsyncDir, tempNameFor, writeAll, writeFileAtomic } from './atomic.js';
import { InputError } from './errors.js';
import { faultPoint } from './fault-injection.js';
import { makeFolder } from './make-folder.js';

/** Whether `inner` is `outer` or lies inside it (both resolved through symlinks where they exist). */
function isInside(inner: string, outer: string): boolean {
  const real = (p: string): string => {
    try { return fs.realpathSync(p); } catch { return path.resolve(p); }
  };
  const rel = path.relative(real(outer), real(inner));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The messages of checkOutputFolder's refusals, so each command keeps its own wording. */
export interface OutputFolderMessages {
  readonly notFolder: (out: string) => string;
  readonly replacesInput: (out: string, input: string) => string;
  readonly notEmpty: (out: string) => string;
}

const DEFAULT_MESSAGES: OutputFolderMessages = {
  notFolder: (out) => `${out}: exists and is not a folder; choose another output folder`,
  replacesInput: (out, input) => `${out}: the output folder would replace the input ${input}; choose another output folder`,
  notEmpty: (out) => `${out}: the output folder exists and is not empty; pass --force to replace it, or choose another folder`,
};

/**
 * Throws an InputError when `out` cannot be written: it is a file, it is (or contains) one of
 * `inputs` (which replacing it would destroy), or it is a non-empty folder and `force` is not set.
 */
export function checkOutputFolder(
  out: string, force: boolean, inputs: readonly string[] = [], messages: OutputFolderMessages = DEFAULT_MESSAGES,
): void {
  const st = fs.statSync(out, { throwIfNoEntry: false });
  if (st === undefined) return;
  if (!st.isDirectory()) throw new InputError(messages.notFolder(out));
  const input = inputs.find((i) => isInside(i, out));
  if (input !== undefined) throw new InputError(messages.replacesInput(out, input));
  if (!force && fs.readdirSync(out).length > 0) throw new InputError(messages.notEmpty(out));
}

/**
 * Creates a temporary sibling of `out`, lets `fill` write into it, fsyncs it, then renames it to
 * `out`, so `out` appears complete or not at all. An existing `out` (already checked by the caller)
 * is moved aside and deleted only after the new folder is in place; on failure the temporary folder
 * is removed and `out` is left as it was.
 */
export async function writeFolderAtomic<T>(out: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  const final = path.resolve(out);
  const tmp = tempNameFor(final);
  await makeFolder(path.dirname(final));
  faultPoint('mkdir', tmp);
  await fsp.mkdir(tmp);
  let result: T;
  try {
    result = await fill(tmp);
    await fsyncDir(tmp);
  } catch (err) {
    await removeFolder(tmp).catch(() => undefined);
    throw err;
  }
  const old = fs.existsSync(final) ? tempNameFor(final) : undefined;
  if (old !== undefined) {
    faultPoint('rename', final);
    await fsp.rename(final, old);
  }
  try {
    faultPoint('rename', final);
    await fsp.rename(tmp, final);
  } catch (err) {
    if (old !== undefined) await fsp.rename(old, final).catch(() => undefined);
    await removeFolder(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(path.dirname(final));
  if (old !== undefined) await removeFolder(old);
  return result;
}


/** Copies `src` to `dst` through a temporary name, fsynced; returns the bytes copied. */
export async function copyFileDurable(src: string, dst: string): Promise<number> {
  let bytes = 0;
  await writeFileAtomic(dst, async (h) => {
    for await (const chunk of fs.createReadStream(src)) bytes += await writeAll(h, chunk as Buffer, bytes, dst);
  });
  return bytes;
}

/** Removes `dir` and everything in it, one file at a time (each a fault point); a missing `dir` is not an error. */
export async function removeFolder(dir: string): Promise<void> {
  let entries: fs.Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      await removeFolder(p);
    } else {
      faultPoint('unlink', p);
      await fsp.unlink(p);
    }
  }
  faultPoint('rmdir', dir);
  await fsp.rmdir(dir);
}

/**
 * Deletes `dir` so that a crash at any instant leaves it whole under its name or gone from it:
 * it is first renamed to a hidden temporary name (which readers of the parent ignore and cleanup
 * removes), then removed.
 */
export async function deleteFolder(dir: string): Promise<void> {
  const away = tempNameFor(dir);
  faultPoint('rename', dir);
  await fsp.rename(dir, away);
  await fsyncDir(path.dirname(dir));
  await removeFolder(away);
}
