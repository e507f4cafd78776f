/**
 * The Hugging Face cache layout, exactly as Python huggingface_hub writes it, so that files fetched
 * by either are reused by the other:
 *
 *   <cacheDir>/models--org--name/
 *     blobs/<etag>                       file bytes (etag: git sha1, or sha256 for LFS files)
 *     blobs/<etag>.incomplete            a download in progress (resumable)
 *     refs/<revision>                    text file holding the commit hash of a branch or tag
 *     snapshots/<commit>/<path>          -> ../../blobs/<etag> (relative symlink)
 *   <cacheDir>/.locks/models--org--name/<etag>.lock   held while blobs/<etag> is downloaded
 *
 * Datasets live in `datasets--org--name`.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomic, tempNameFor } from '../io/atomic.js';
import { InputError } from '../io/errors.js';
import { makeFolder } from '../io/make-folder.js';
import { checkRepoPath, checkRevision, isCommitHash, type RepoRef } from './repo.js';

/** `models--org--name` / `datasets--org--name`. */
export function repoFolderName(repo: RepoRef): string {
  return [`${repo.type}s`, ...repo.name.split('/')].join('--');
}

/** The folder of one repo in the cache. */
export function repoCacheFolder(cacheDir: string, repo: RepoRef): string {
  return path.join(cacheDir, repoFolderName(repo));
}

export function snapshotFolder(storage: string, commit: string): string {
  return path.join(storage, 'snapshots', commit);
}

/** Blob names are etags: reject anything that is not a plain file name. */
export function checkEtag(etag: string, where: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(etag)) throw new InputError(`${where}: unexpected etag ${JSON.stringify(etag)}`);
  return etag;
}

/** `.locks/models--org--name`: where huggingface_hub keeps one `<etag>.lock` per blob of the repo. */
export function blobLockFolder(cacheDir: string, repo: RepoRef): string {
  return path.join(cacheDir, '.locks', repoFolderName(repo));
}

export function blobPath(storage: string, etag: string): string {
  return path.join(storage, 'blobs', etag);
}

export function incompletePath(storage: string, etag: string): string {
  return `${blobPath(storage, etag)}.incomplete`;
}

/** The commit a ref file names, or undefined when there is no such ref (or it does not hold a commit hash). */
export async function readRef(storage: string, revision: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(storage, 'refs', checkRevision(revision)), 'utf8');
  } catch {
    return undefined;
  }
  const commit = text.trim();
  return isCommitHash(commit) ? commit : undefined;
}

/** Point refs/<revision> at `commit` (written atomically; Python writes the bare hash, no newline). */
export async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const file = path.join(storage, 'refs', checkRevision(revision));
  if ((await readRef(storage, revision)) === commit) return;
  await writeBytesAtomic(file, commit);
}

export interface CachedSnapshot {
  readonly commit: string;
  readonly folder: string;
}

/**
 * Resolve `revision` (a branch/tag with a ref file, or a commit hash) to a snapshot folder in the
 * cache without any network access; undefined when the cache does not know it.
 */
export async function cachedSnapshot(cacheDir: string, repo: RepoRef, revision: string): Promise<CachedSnapshot | undefined> {
  const storage = repoCacheFolder(cacheDir, repo);
  const commit = isCommitHash(revision) ? revision : await readRef(storage, revision);
  if (commit === undefined) return undefined;
  const folder = snapshotFolder(storage, commit);
  try {
    if (!(await fsp.stat(folder)).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  return { commit, folder };
}

/** Whether `relPath` exists in a snapshot folder as a readable file (following its symlink to the blob). */
export async function hasCachedFile(folder: string, relPath: string): Promise<boolean> {
  try {
    return (await fsp.stat(path.join(folder, checkRepoPath(relPath, folder)))).isFile();
  } catch {
    return false;
  }
}

/**
 * Make snapshots/<commit>/<relPath> point at blobs/<etag> with a relative symlink, as Python does
 * (replacing whatever was there, e.g. a dangling link). The link is made under a temporary name and
 * renamed into place. Where symlinks are not allowed the blob is copied instead.
 */
export async function linkSnapshotFile(storage: string, commit: string, relPath: string, etag: string): Promise<string> {
  const dst = path.join(snapshotFolder(storage, commit), checkRepoPath(relPath, storage));
  const src = blobPath(storage, etag);
  await makeFolder(path.dirname(dst));
  const tmp = tempNameFor(dst);
  try {
    try {
      await fsp.symlink(path.relative(path.dirname(dst), src), tmp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      await fsp.copyFile(src, tmp);
    }
    await fsp.rename(tmp, dst);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  return dst;
}
