import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { withPath } from './errors.js';
import { faultPoint } from './fault-injection.js';
import { makeFolder } from './make-folder.js';

/** A temporary sibling name for `finalPath`, never matching a final name. */
export function tempNameFor(finalPath: string): string {
  const dir = path.dirname(finalPath);
  return path.join(dir, `.${path.basename(finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsyncs a folder so that renames and new names in it survive a crash (a no-op where the filesystem refuses). */
export async function fsyncDir(dir: string): Promise<void> {
  faultPoint('fsync', dir);
  const h = await fsp.open(dir, 'r');
  try { await h.sync(); } catch { /* some filesystems refuse directory fsync */ } finally { await h.close(); }
}

/** Writes all of `data` at `position` of `h` (in chunks of at most 1 GiB); returns the bytes written. `file` names it for fault injection. */
export async function writeAll(h: fsp.FileHandle, data: Uint8Array, position: number, file = ''): Promise<number> {
  let done = 0;
  while (done < data.byteLength) {
    faultPoint('write', file);
    const { bytesWritten } = await h.write(data, done, Math.min(data.byteLength - done, 1 << 30), position + done);
    done += bytesWritten;
  }
  return done;
}

/**
 * Write a file by streaming chunks to a temporary name, fsync, then rename to `finalPath`.
 * On any failure the temporary file is removed and nothing appears under the final name.
 */
export async function writeFileAtomic(
  finalPath: string,
  write: (h: fsp.FileHandle) => Promise<void>,
): Promise<void> {
  await makeFolder(path.dirname(finalPath));
  const tmp = tempNameFor(finalPath);
  faultPoint('open', tmp);
  const h = await fsp.open(tmp, 'w');
  try {
    await write(h);
    faultPoint('fsync', tmp);
    await h.sync();
    await h.close();
    faultPoint('rename', finalPath);
    await fsp.rename(tmp, finalPath);
    await fsyncDir(path.dirname(finalPath));
  } catch (err) {
    await h.close().catch(() => undefined);
    faultPoint('unlink', tmp);
    await fsp.rm(tmp, { force: true });
    throw withPath(err, finalPath);
  }
}

export async function writeBytesAtomic(finalPath: string, data: Uint8Array | string): Promise<void> {
  await writeFileAtomic(finalPath, async (h) => {
    faultPoint('write', finalPath);
    await h.writeFile(data);
  });
}
