import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** A temporary sibling name for `finalPath`, never matching a final name. */
export function tempNameFor(finalPath: string): string {
  const dir = path.dirname(finalPath);
  return path.join(dir, `.${path.basename(finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsyncs a folder so that renames and new names in it survive a crash (a no-op where the filesystem refuses). */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try { await h.sync(); } catch { /* some filesystems refuse directory fsync */ } finally { await h.close(); }
}

/** Writes all of `data` at `position` of `h` (in chunks of at most 1 GiB); returns the bytes written. */
export async function writeAll(h: fsp.FileHandle, data: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < data.byteLength) {
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
  await fsp.mkdir(path.dirname(finalPath), { recursive: true });
  const tmp = tempNameFor(finalPath);
  const h = await fsp.open(tmp, 'w');
  try {
    await write(h);
    await h.sync();
    await h.close();
    await fsp.rename(tmp, finalPath);
    await fsyncDir(path.dirname(finalPath));
  } catch (err) {
    await h.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

export async function writeBytesAtomic(finalPath: string, data: Uint8Array | string): Promise<void> {
  await writeFileAtomic(finalPath, async (h) => { await h.writeFile(data); });
}
