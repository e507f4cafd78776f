import * as path from 'node:path';
import { InputError } from '../io/errors.js';

export type RepoType = 'model' | 'dataset';

/** A hub repository: `name` is `org/name` (or a legacy single `name`). */
export interface RepoRef {
  readonly type: RepoType;
  readonly name: string;
}

export const DEFAULT_REVISION = 'main';

const COMMIT_HASH = /^[0-9a-f]{40}$/;
/** Python huggingface_hub's REPO_ID_REGEX: an optional namespace, then a name, of [A-Za-z0-9_.-]. */
const REPO_ID = /^(?:\b[\w\-.]+\b\/)?\b[\w\-.]+\b$/;

export function isCommitHash(revision: string): boolean {
  return COMMIT_HASH.test(revision);
}

/** `ditty-test/tiny-model`, or `datasets/org/name` for a dataset: how messages name a repo. */
export function repoLabel(repo: RepoRef): string {
  return repo.type === 'model' ? repo.name : `${repo.type}s/${repo.name}`;
}

/** Why `name` is not a valid repo id, or undefined when it is (the rules of Python's validate_repo_id). */
export function repoIdProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > 96) return 'it is longer than 96 characters';
  if (!REPO_ID.test(name)) {
    return 'expected "org/name" (or "name") made of letters, digits, "-", "_" and ".", not starting or ending with "-" or "."';
  }
  if (name.includes('--') || name.includes('..')) return 'it must not contain "--" or ".."';
  if (name.endsWith('.git')) return 'it must not end with ".git"';
  return undefined;
}

export function checkRepo(repo: RepoRef): RepoRef {
  if (repo.type !== 'model' && repo.type !== 'dataset') {
    throw new InputError(`repo type ${JSON.stringify(repo.type)} is not supported: expected "model" or "dataset"`);
  }
  const problem = repoIdProblem(repo.name);
  if (problem !== undefined) throw new InputError(`${JSON.stringify(repo.name)} is not a valid Hugging Face repo id: ${problem}`);
  return repo;
}

/**
 * Written like a local path rather than a hub repo id ("owner/name"): starts with ".", "/" or "~",
 * has a backslash, is absolute, or has more than one "/".
 */
export function looksLikePath(s: string): boolean {
  return /^[.~/]/.test(s) || s.includes('\\') || path.isAbsolute(s) || s.split('/').length > 2;
}

/** Non-empty, "/"-separated, not absolute, no empty, "." or ".." segments, no backslash or NUL. */
function isPlainRelativePath(p: string): boolean {
  return p.length > 0 && !p.includes('\\') && !p.includes('\0') && !p.startsWith('/')
    && !p.split('/').some((s) => s === '' || s === '.' || s === '..');
}

/**
 * A revision (branch, tag or commit hash) that is safe to use as a path under refs/: no empty,
 * "." or ".." segments, no backslash, not absolute.
 */
export function checkRevision(revision: string): string {
  if (!isPlainRelativePath(revision)) throw new InputError(`${JSON.stringify(revision)} is not a valid revision: expected a branch, tag or 40-hex commit hash`);
  return revision;
}

/** A file path inside a repo: relative, "/"-separated, no "." or ".." segments. */
export function checkRepoPath(p: string, where: string): string {
  if (!isPlainRelativePath(p)) throw new InputError(`${where}: ${JSON.stringify(p)} is not a file path inside the repo`);
  return p;
}
