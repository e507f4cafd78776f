/**
 * Download one file into the cache's blobs/ folder, the way Python huggingface_hub does:
 * under the blob's lock (`.locks/<repo folder>/<etag>.lock`, see lock.ts), bytes go to
 * `blobs/<etag>.incomplete`, which is fsynced, checked on disk (size and hash, read back from the
 * file that will be renamed) and only then renamed to `blobs/<etag>`. An interrupted download leaves the `.incomplete` file, and the next
 * attempt resumes it with `Range: bytes=<its size>-` (or starts over when the server ignores the
 * range). The final name never holds a partial file.
 *
 * This replaces @huggingface/hub's downloadFileToCacheDir write step, which streams to
 * `.incomplete` with a truncating write (no resume), without fsync or any check of the bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fsyncDir } from '../io/atomic.js';
import { makeFolder } from '../io/make-folder.js';
import { blobPath, incompletePath } from './cache.js';
import { describeFetchFailure, httpErrorFrom, HubNetworkError, isNetworkError, isTransient, withRetries } from './http.js';
import { withFileLock } from './lock.js';
import type { ProgressReporter } from './progress.js';

/** How the finished bytes are checked. */
export type BlobCheck =
  /** LFS files: sha256 of the content (the tree listing's lfs.oid, also the blob name) */
  | { kind: 'sha256'; hex: string }
  /** regular git files: the git blob id, sha1("blob <size>\0" + content) */
  | { kind: 'git-sha1'; hex: string }
  | { kind: 'none' };

export interface BlobRequest {
  /** the resolve URL, e.g. {endpoint}/{repo}/resolve/{commit}/{path} */
  url: string;
  /** the repo's cache folder (models--org--name) */
  storage: string;
  etag: string;
  size: number;
  check: BlobCheck;
  /** the file's path in the repo, for progress and messages */
  displayName: string;
  token?: string;
  fetch: typeof fetch;
  progress: ProgressReporter;
  /** give up a connection that delivers no byte for this long (ms) */
  idleTimeoutMs: number;
  /** further attempts after a network failure, each resuming (default 5) */
  retries: number;
  /** delay before the first retry, doubled each time (ms); a Retry-After from the server wins, up to maxRetryAfterMs */
  retryDelayMs: number;
  /** the longest Retry-After honoured (ms, default 60 s); asking for more ends the retries */
  maxRetryAfterMs?: number;
  /** aborts the download and any wait (the command's overall deadline) */
  signal?: AbortSignal;
  /** the folder of the per-blob lock files (`.locks/<repo folder>`); no lock when absent */
  lockDir?: string;
}

/** The bytes received do not match the size or hash the hub listed. */
class BlobMismatchError extends Error {}

function newHasher(check: BlobCheck, size: number): Hash | undefined {
  if (check.kind === 'none') return undefined;
  if (check.kind === 'sha256') return createHash('sha256');
  return createHash('sha1').update(`blob ${size}\0`);
}

/** The size of `p`, or 0 when it does not exist. */
export async function fileSize(p: string): Promise<number> {
  try {
    return (await fsp.stat(p)).size;
  } catch {
    return 0;
  }
}

async function hashPrefix(file: string, hasher: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hasher.update(chunk as Buffer);
}

function isRetryable(err: unknown): boolean {
  return err instanceof BlobMismatchError || isTransient(err);
}

async function exists(p: string): Promise<boolean> {
  try { await fsp.stat(p); return true; } catch { return false; }
}

/** Download (or resume) one blob; returns the path of the complete blob. */
export async function fetchBlob(req: BlobRequest): Promise<string> {
  await makeFolder(path.join(req.storage, 'blobs'));
  const final = blobPath(req.storage, req.etag);
  const download = async (): Promise<string> => {
    // Another process may have finished it while this one waited for the lock.
    if (await exists(final)) return final;
    return withRetries(() => fetchBlobOnce(req), {
      retries: req.retries,
      retryDelayMs: req.retryDelayMs,
      maxRetryAfterMs: req.maxRetryAfterMs ?? 60_000,
      signal: req.signal,
      retryable: isRetryable,
    });
  };
  if (req.lockDir === undefined) return download();
  return withFileLock(path.join(req.lockDir, `${req.etag}.lock`), download, {
    ...(req.signal !== undefined ? { signal: req.signal } : {}),
    onWait: () => req.progress.note?.(`${req.displayName}: another process is downloading it; waiting for it to finish`),
  });
}

/** Checks the file about to become the blob, as it is on disk: its size, and its hash when the hub listed one. */
async function finalize(req: BlobRequest, incomplete: string): Promise<string> {
  const size = await fileSize(incomplete);
  if (size !== req.size) {
    await fsp.rm(incomplete, { force: true });
    throw new BlobMismatchError(`${req.displayName}: the downloaded file has ${size} bytes, the hub lists ${req.size}`);
  }
  const hasher = newHasher(req.check, req.size);
  if (hasher !== undefined && req.check.kind !== 'none') {
    await hashPrefix(incomplete, hasher);
    const got = hasher.digest('hex');
    if (got !== req.check.hex) {
      await fsp.rm(incomplete, { force: true });
      throw new BlobMismatchError(`${req.displayName}: downloaded bytes have ${req.check.kind} ${got}, the hub lists ${req.check.hex}`);
    }
  }
  const final = blobPath(req.storage, req.etag);
  await fsp.rename(incomplete, final);
  await fsyncDir(path.dirname(final));
  return final;
}

async function fetchBlobOnce(req: BlobRequest): Promise<string> {
  const incomplete = incompletePath(req.storage, req.etag);
  let start = await fileSize(incomplete);
  if (start > req.size) {
    await fsp.rm(incomplete, { force: true });
    start = 0;
  }
  if (start === req.size && req.size > 0) return finalize(req, incomplete);

  const ac = new AbortController();
  const onAbort = () => ac.abort(req.signal!.reason);
  req.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await transfer(req, incomplete, start, ac);
  } finally {
    req.signal?.removeEventListener('abort', onAbort);
  }
}

async function transfer(req: BlobRequest, incomplete: string, from: number, ac: AbortController): Promise<string> {
  let start = from;
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => ac.abort(new HubNetworkError(req.url, `no data for ${req.idleTimeoutMs / 1000}s`)), req.idleTimeoutMs);
  };

  const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
  if (req.token !== undefined) headers['Authorization'] = `Bearer ${req.token}`;
  if (start > 0) headers['Range'] = `bytes=${start}-`;

  let res: Response;
  arm();
  try {
    res = await req.fetch(req.url, { headers, redirect: 'follow', signal: ac.signal });
  } catch (err) {
    clearTimeout(idle);
    if (ac.signal.aborted && ac.signal.reason instanceof Error) throw ac.signal.reason;
    if (isNetworkError(err)) throw new HubNetworkError(req.url, describeFetchFailure(err), { cause: err });
    throw err;
  }

  if (res.status === 416 && start > 0) {
    // The server refuses our range: the partial file is not a prefix it knows. Start over.
    clearTimeout(idle);
    await res.body?.cancel();
    await fsp.rm(incomplete, { force: true });
    return fetchBlobOnce(req);
  }
  if (!res.ok) {
    clearTimeout(idle);
    throw await httpErrorFrom(res, req.url);
  }
  if (start > 0 && res.status !== 206) {
    // Range ignored (200): the body is the whole file.
    start = 0;
  } else if (start > 0) {
    const cr = res.headers.get('Content-Range') ?? '';
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr.trim());
    if (!m || Number(m[1]) !== start || (m[3] !== '*' && Number(m[3]) !== req.size)) {
      clearTimeout(idle);
      await res.body?.cancel();
      await fsp.rm(incomplete, { force: true });
      throw new BlobMismatchError(`${req.displayName}: unexpected Content-Range ${JSON.stringify(cr)} for a request from byte ${start}`);
    }
  }

  const progress = req.progress.file(req.displayName, req.size, start);
  const fh = await fsp.open(incomplete, start > 0 ? 'a' : 'w');
  let done = start;
  try {
    if (res.body === null) throw new HubNetworkError(req.url, 'empty response body');
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        arm();
        if (done + chunk.byteLength > req.size) {
          throw new BlobMismatchError(`${req.displayName}: the server sent more than the ${req.size} bytes the hub lists`);
        }
        await fh.write(chunk);
        done += chunk.byteLength;
        progress.update(done);
      }
    } catch (err) {
      if (ac.signal.aborted && ac.signal.reason instanceof Error) throw ac.signal.reason;
      if (isNetworkError(err)) {
        throw new HubNetworkError(req.url, `connection lost after ${done} of ${req.size} bytes: ${describeFetchFailure(err)}`, { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(idle);
    }
    if (done !== req.size) {
      throw new HubNetworkError(req.url, `the response ended after ${done} of ${req.size} bytes`);
    }
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => undefined);
    progress.abort();
    if (err instanceof BlobMismatchError) await fsp.rm(incomplete, { force: true });
    throw err;
  }
  let final: string;
  try {
    final = await finalize(req, incomplete);
  } catch (err) {
    progress.abort();
    throw err;
  }
  progress.finish();
  return final;
}
