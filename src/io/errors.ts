/** An error caused by a user's input (file, config, argument): printed without a stack trace. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** A weight file that cannot be read as it claims to be. */
export class WeightFileError extends InputError {
  constructor(readonly file: string, message: string, readonly tensor?: string) {
    super(`${file}${tensor !== undefined ? `: tensor "${tensor}"` : ''}: ${message}`);
  }
}

/** Why a file operation failed, by errno code: the ones the user's machine causes (permissions, space, a file in the way). */
const FS_REASONS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied', EPERM: 'operation not permitted', EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded', EFBIG: 'file too large',
  ENOTDIR: 'a part of the path is a file, not a folder', EISDIR: 'is a folder', EEXIST: 'something of that name is in the way',
  ENOENT: 'no such file or folder', ENAMETOOLONG: 'name too long', ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files', ENFILE: 'too many open files in the system', EIO: 'input/output error',
  EBUSY: 'busy', ENXIO: 'no such device', ENODEV: 'no such device',
};

/** What ditty was doing, by the failed system call. */
const FS_OPERATIONS: Readonly<Record<string, string>> = {
  open: 'open', read: 'read', write: 'write', append: 'write', fsync: 'flush to disk', close: 'close', mkdir: 'create the folder',
  rmdir: 'remove the folder', unlink: 'delete', rm: 'delete', rename: 'rename', scandir: 'list', opendir: 'list',
  stat: 'look up', lstat: 'look up', fstat: 'look up', access: 'access', copyfile: 'copy',
  ftruncate: 'truncate', link: 'link', symlink: 'link', utime: 'set the time of', chmod: 'change the mode of',
};

/** `err` with `path` set when the failed call had none (a write or fsync on a file handle), so that its message names the file. */
export function withPath(err: unknown, file: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e === 'object' && e !== null && typeof e.code === 'string' && !e.path) e.path = file;
  return err;
}

/**
 * The one line a failed file operation is reported as (`<path>: cannot <operation>: <reason> (<CODE>)`),
 * or undefined when `err` is not a file system error caused by the machine (then it is a bug).
 */
export function fileSystemError(err: unknown): InputError | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException & { dest?: string };
  const reason = typeof e.code === 'string' ? FS_REASONS[e.code] : undefined;
  const operation = typeof e.syscall === 'string' ? FS_OPERATIONS[e.syscall] : undefined;
  if (reason === undefined || operation === undefined) return undefined;
  const target = e.dest !== undefined ? ` to ${e.dest}` : '';
  return new InputError(`${e.path ?? 'a file'}: cannot ${operation}${target}: ${reason} (${e.code})`);
}
