/** Positional reads of weight files through a file descriptor, with WeightFileError messages. */
import * as fs from 'node:fs';
import { WeightFileError } from './errors.js';

/** Opens `file` for reading; a failure, or something other than a regular file, is a WeightFileError. */
export function openForReading(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new WeightFileError(file, `cannot open: ${(err as Error).message}`);
  }
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw new WeightFileError(file, 'not a regular file (a folder?); expected a weight file');
  }
  return fd;
}

/** Fills `buf` from `position` of `fd` (in chunks of at most 1 GiB); the file ending first is a WeightFileError. */
export function readFully(file: string, fd: number, buf: Uint8Array, position: number, tensor?: string): void {
  let done = 0;
  while (done < buf.byteLength) {
    const chunk = Math.min(buf.byteLength - done, 1 << 30);
    const n = fs.readSync(fd, buf, done, chunk, position + done);
    if (n === 0) throw new WeightFileError(file, `unexpected end of file at byte ${position + done}`, tensor);
    done += n;
  }
}
