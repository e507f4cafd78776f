/**
 * Fetch what ditty needs from the Hugging Face hub into the standard cache, or find it there.
 *
 * Online:  GET /api/{models|datasets}/{repo}/revision/{rev}   -> the commit (sha); refs/<rev> is written
 *          GET /api/{models|datasets}/{repo}/tree/{commit}?recursive=true  -> files, sizes, etags
 *          GET {repo}/resolve/{commit}/{path}  (Range to resume)   -> blobs/<etag>, snapshots/<commit>/<path>
 * Offline (HF_HUB_OFFLINE, or the hub unreachable): the same files from the cache only.
 */
import { promises as fsp, statSync } from 'node:fs';
import * as path from 'node:path';
import { datasetInfo, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { InputError } from '../io/errors.js';
import { makeFolder } from '../io/make-folder.js';
import { MODEL_SIDE_FILES } from '../io/model-folder.js';
import { parseWeightIndex, WEIGHT_LAYOUTS } from '../io/weight-index.js';
import {
  blobLockFolder,
  blobPath,
  cachedSnapshot,
  checkEtag,
  hasCachedFile,
  incompletePath,
  linkSnapshotFile,
  repoCacheFolder,
  snapshotFolder,
  writeRef,
} from './cache.js';
import { hubSettings, type HubSettings } from './env.js';
import { fetchBlob, fileSize, type BlobCheck } from './fetch-blob.js';
import { Deadline, HubError, HubHttpError, HubNetworkError, hubFetch, isNetworkError } from './http.js';
import { consoleProgress, silentProgress, type ProgressReporter } from './progress.js';
import {
  checkRepo,
  checkRepoPath,
  checkRevision,
  DEFAULT_REVISION,
  isCommitHash,
  looksLikePath,
  repoIdProblem,
  repoLabel,
  type RepoRef,
  type RepoType,
} from './repo.js';

export interface DownloadOptions {
  /** branch, tag or commit hash (default "main") */
  revision?: string;
  /** true (default): bars on a TTY, plain lines otherwise; false: silent; or a custom reporter */
  progress?: boolean | ProgressReporter;
  /** the fetch to use (default globalThis.fetch), e.g. to go through a proxy */
  fetch?: typeof fetch;
  /** further attempts per file after a network failure, each resuming where the last stopped (default 5) */
  retries?: number;
  /** delay before the first retry in ms, doubled each time (default 1000) */
  retryDelayMs?: number;
  /** environment to read HF_* settings from (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** overall deadline in ms (default: $DITTY_HUB_DEADLINE, plus time for the bytes to download) */
  deadlineMs?: number;
}

/** Bytes a download is allowed per second of deadline beyond the base (a very slow link still finishes). */
const DEADLINE_BYTES_PER_S = 256 * 1024;
/** Retries of one metadata request (a transient 5xx or 429); then the cache, if complete, is used. */
const METADATA_RETRIES = 2;

export interface SnapshotResult {
  /** snapshots/<commit> in the cache: the files lie here under their repo paths */
  folder: string;
  commit: string;
  /** the repo paths that were fetched or found */
  files: string[];
  /** true when the result came from the cache alone, without asking the hub */
  fromCache: boolean;
}

export interface RepoFilesRequest extends DownloadOptions {
  repo: RepoRef;
  /** repo paths, e.g. ["databricks-dolly-15k.jsonl"]; all must exist */
  files: readonly string[];
}

export interface ModelFolderOptions extends DownloadOptions {
  /** 'model' (default): config, tokenizer files, weights; or an explicit list of repo paths */
  files?: 'model' | readonly string[];
  /** default 'model' */
  repoType?: RepoType;
}

/** Chooses the files to fetch. `has`/`read` look at the hub listing online, at the snapshot offline. */
type FilePlan = (has: (p: string) => Promise<boolean>, read: (p: string) => Promise<string>, where: string) => Promise<string[]>;

class NoWeightsError extends Error {}

const WEIGHT_CHOICES = WEIGHT_LAYOUTS.flatMap((l) => [l.single, l.index]).join(', ');

/** config.json, the tokenizer files there are, and the first weight layout there is (single file, else index + shards). */
const modelFilePlan: FilePlan = async (has, read, where) => {
  const files: string[] = ['config.json'];
  for (const f of MODEL_SIDE_FILES) if (await has(f)) files.push(f);
  for (const layout of WEIGHT_LAYOUTS) {
    if (await has(layout.single)) return [...files, layout.single];
    if (await has(layout.index)) {
      const at = `${where}/${layout.index}`;
      const index = parseWeightIndex(await read(layout.index), at);
      return [...files, layout.index, ...index.files.map((f) => checkRepoPath(f, at))];
    }
  }
  throw new NoWeightsError(`model weights (one of ${WEIGHT_CHOICES})`);
};

function explicitPlan(files: readonly string[]): FilePlan {
  return async (_has, _read, where) => {
    if (files.length === 0) throw new InputError(`${where}: no files asked for`);
    return [...new Set(files.map((f) => checkRepoPath(f, where)))];
  };
}

interface Context {
  repo: RepoRef;
  label: string;
  revision: string;
  settings: HubSettings;
  storage: string;
  fetch: typeof fetch;
  progress: ProgressReporter;
  retries: number;
  retryDelayMs: number;
  deadline: Deadline;
  /** whether deadlineMs was given (then downloads do not extend it) */
  fixedDeadline: boolean;
}

function tokenNote(s: HubSettings): string {
  return s.token !== undefined
    ? `a token from ${s.tokenSource} was sent`
    : 'no token is set: HF_TOKEN, or the file $HF_HOME/token';
}

/** A user-facing message for an HTTP error from the hub. */
function explainHttp(err: HubHttpError, ctx: Context, file?: string): HubError {
  const { label, revision, settings } = ctx;
  const rev = `revision "${revision}"`;
  const said = err.serverMessage ? ` (hub: ${err.serverMessage})` : '';
  switch (err.errorCode) {
    case 'GatedRepo':
      return new HubError(
        `${label} is a gated repo: accept its conditions at ${settings.endpoint}/${label} while logged in, ` +
        `then set HF_TOKEN to an access token of that account (${tokenNote(settings)})${said}`,
      );
    case 'RevisionNotFound':
      return new HubError(`${rev} not found in ${label}: check the branch, tag or commit name${said}`);
    case 'EntryNotFound':
      return new HubError(`${file ?? 'a file'} not found in ${label} at ${rev}${said}`);
  }
  if (err.status === 401) {
    return new HubError(
      `${label} at ${rev}: repository not found, or private/gated and not accessible (HTTP 401). ` +
      `If it is private or gated, set HF_TOKEN to an access token with read access to it (${tokenNote(settings)})${said}`,
    );
  }
  if (err.status === 403) {
    return new HubError(
      `access to ${label} denied (HTTP 403): the token lacks permission or the repo is gated; ` +
      `accept its conditions at ${settings.endpoint}/${label} and set HF_TOKEN to a token with read access (${tokenNote(settings)})${said}`,
    );
  }
  if (err.status === 404 || err.errorCode === 'RepoNotFound') {
    const hint = settings.token === undefined ? '; if it is private, set HF_TOKEN' : '';
    return new HubError(`repository ${label} not found at ${settings.endpoint} (${rev}): check the name${hint}${said}`);
  }
  return new HubError(`${settings.endpoint} answered HTTP ${err.status} for ${label} at ${rev}${file ? `, file ${file}` : ''}${said}`);
}

function commitOf(sha: unknown, ctx: Context): string {
  if (typeof sha !== 'string' || !isCommitHash(sha)) {
    throw new HubError(`${ctx.settings.endpoint} gave no commit hash for ${ctx.label} at revision "${ctx.revision}" (got ${JSON.stringify(sha)})`);
  }
  return sha;
}

function resolveUrl(ctx: Context, commit: string, file: string): string {
  const prefix = ctx.repo.type === 'dataset' ? 'datasets/' : '';
  return `${ctx.settings.endpoint}/${prefix}${ctx.repo.name}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

function etagOf(entry: ListFileEntry, where: string): { etag: string; check: BlobCheck } {
  if (entry.lfs?.oid) return { etag: checkEtag(entry.lfs.oid, where), check: { kind: 'sha256', hex: entry.lfs.oid } };
  if (entry.oid) return { etag: checkEtag(entry.oid, where), check: { kind: 'git-sha1', hex: entry.oid } };
  throw new HubError(`${where}: the hub listed no etag (oid) for this file`);
}

async function exists(p: string): Promise<boolean> {
  try { await fsp.stat(p); return true; } catch { return false; }
}

/** Resolve the snapshot from the cache alone; `reason` says why the hub is not asked. */
async function fromCache(ctx: Context, plan: FilePlan, reason: string): Promise<SnapshotResult> {
  const { label, revision, settings } = ctx;
  const snap = await cachedSnapshot(settings.cacheDir, ctx.repo, revision);
  if (snap === undefined) {
    throw new HubError(`${reason}, and the cache ${settings.cacheDir} has no snapshot of ${label} for revision "${revision}"`);
  }
  const has = (p: string) => hasCachedFile(snap.folder, p);
  const read = (p: string) => fsp.readFile(path.join(snap.folder, p), 'utf8');
  let files: string[];
  let missing: string[];
  try {
    files = await plan(has, read, `${label}@${revision}`);
    missing = [];
    for (const f of files) if (!(await has(f))) missing.push(f);
  } catch (err) {
    if (!(err instanceof NoWeightsError)) throw err;
    files = [];
    missing = (await has('config.json')) ? [err.message] : ['config.json', err.message];
  }
  if (missing.length > 0) {
    throw new HubError(
      `${reason}, and the cached snapshot of ${label} at revision "${revision}" (${snap.folder}) lacks: ${missing.join(', ')}`,
    );
  }
  return { folder: snap.folder, commit: snap.commit, files, fromCache: true };
}

async function fetchSnapshot(repo: RepoRef, plan: FilePlan, opts: DownloadOptions, cacheFirst: boolean): Promise<SnapshotResult> {
  checkRepo(repo);
  const revision = checkRevision(opts.revision ?? DEFAULT_REVISION);
  const settings = hubSettings(opts.env ?? process.env);
  const ctx: Context = {
    repo,
    label: repoLabel(repo),
    revision,
    settings,
    storage: repoCacheFolder(settings.cacheDir, repo),
    fetch: opts.fetch ?? globalThis.fetch,
    progress: opts.progress === false ? silentProgress : opts.progress === true || opts.progress === undefined ? consoleProgress() : opts.progress,
    retries: opts.retries ?? 5,
    retryDelayMs: opts.retryDelayMs ?? 1000,
    deadline: new Deadline(opts.deadlineMs ?? settings.deadlineS * 1000, `fetching ${repoLabel(repo)} from ${settings.endpoint}`),
    fixedDeadline: opts.deadlineMs !== undefined,
  };
  try {
    return await fetchSnapshotWithin(ctx, plan, cacheFirst);
  } finally {
    ctx.deadline.clear();
  }
}

async function fetchSnapshotWithin(ctx: Context, plan: FilePlan, cacheFirst: boolean): Promise<SnapshotResult> {
  const { repo, revision, settings } = ctx;
  // @huggingface/hub only takes tokens that start with "hf_"; others go in our own header.
  const libToken = settings.token?.startsWith('hf_') ? settings.token : undefined;
  if (settings.offline) return fromCache(ctx, plan, 'HF_HUB_OFFLINE is set');
  if (cacheFirst && isCommitHash(revision)) {
    // A commit never changes: when everything is cached there is nothing to ask the hub.
    try { return await fromCache(ctx, plan, 'cached'); } catch { /* fetch what is missing */ }
  }

  const apiFetch = hubFetch({
    base: ctx.fetch,
    ...(settings.token !== undefined && libToken === undefined ? { token: settings.token } : {}),
    timeoutMs: settings.metadataTimeoutS * 1000,
    retries: Math.min(ctx.retries, METADATA_RETRIES),
    retryDelayMs: ctx.retryDelayMs,
    signal: ctx.deadline.signal,
  });
  const common = { hubUrl: settings.endpoint, fetch: apiFetch, ...(libToken !== undefined ? { accessToken: libToken } : {}) };

  let commit: string;
  const listing = new Map<string, ListFileEntry>();
  try {
    const info = repo.type === 'model'
      ? await modelInfo({ ...common, name: repo.name, revision, additionalFields: ['sha'] })
      : await datasetInfo({ ...common, name: repo.name, revision, additionalFields: ['sha'] });
    commit = commitOf(info.sha, ctx);
    for await (const entry of listFiles({ ...common, repo, revision: commit, recursive: true })) {
      if (entry.type === 'file') listing.set(entry.path, entry);
    }
  } catch (err) {
    // As huggingface_hub: when the hub fails (5xx, or 429 after the retries) a complete cache still serves.
    if (err instanceof HubHttpError && (err.status >= 500 || err.status === 429)) {
      return fromCache(ctx, plan, `${settings.endpoint} answered HTTP ${err.status}${err.serverMessage ? ` (${err.serverMessage})` : ''}`);
    }
    if (err instanceof HubHttpError) throw explainHttp(err, ctx);
    if (isNetworkError(err)) {
      const why = err instanceof HubNetworkError ? err.reason : String((err as Error).message);
      return fromCache(ctx, plan, `cannot reach ${settings.endpoint} (${why})`);
    }
    throw err;
  }
  await writeRef(ctx.storage, revision, commit);
  const folder = snapshotFolder(ctx.storage, commit);

  const ensure = async (file: string): Promise<void> => {
    const where = `${ctx.label}@${revision}/${file}`;
    const entry = listing.get(file);
    if (entry === undefined) throw new HubError(`${file} not found in ${ctx.label} at revision "${revision}"`);
    if (await hasCachedFile(folder, file)) return;
    const { etag, check } = etagOf(entry, where);
    if (!(await exists(blobPath(ctx.storage, etag)))) {
      try {
        await fetchBlob({
          url: resolveUrl(ctx, commit, file),
          storage: ctx.storage,
          etag,
          size: entry.lfs?.size ?? entry.size,
          check,
          displayName: file,
          ...(settings.token !== undefined ? { token: settings.token } : {}),
          fetch: ctx.fetch,
          progress: ctx.progress,
          idleTimeoutMs: settings.downloadTimeoutS * 1000,
          retries: ctx.retries,
          retryDelayMs: ctx.retryDelayMs,
          signal: ctx.deadline.signal,
          lockDir: blobLockFolder(settings.cacheDir, repo),
        });
      } catch (err) {
        if (err instanceof HubHttpError) throw explainHttp(err, ctx, file);
        if (err instanceof InputError) throw err;
        const kept = await fileSize(incompletePath(ctx.storage, etag));
        throw new HubError(
          `download of ${file} from ${ctx.label} (revision "${revision}") failed: ${(err as Error).message}` +
          (kept > 0 ? `; ${kept} bytes are kept in ${incompletePath(ctx.storage, etag)} and the next run resumes from there` : ''),
        );
      }
    }
    await linkSnapshotFile(ctx.storage, commit, file, etag);
  };

  const has = async (p: string) => listing.has(p);
  const read = async (p: string) => { await ensure(p); return fsp.readFile(path.join(folder, p), 'utf8'); };
  let files: string[];
  try {
    files = await plan(has, read, `${ctx.label}@${revision}`);
  } catch (err) {
    if (err instanceof NoWeightsError) throw new HubError(`${ctx.label} at revision "${revision}" has no ${err.message}`);
    throw err;
  }
  const missing = files.filter((f) => !listing.has(f));
  if (missing.length > 0) {
    throw new HubError(`${ctx.label} at revision "${revision}" has no ${missing.join(', ')}`);
  }

  const need = await checkDiskSpace(ctx, files.map((f) => listing.get(f)!), folder);
  if (!ctx.fixedDeadline) ctx.deadline.extend(Math.ceil(need / DEADLINE_BYTES_PER_S) * 1000);
  for (const f of files) await ensure(f);
  return { folder, commit, files, fromCache: false };
}

/** Fail early, with sizes, when the blobs still to fetch do not fit on the disk; returns the bytes to fetch. */
async function checkDiskSpace(ctx: Context, entries: ListFileEntry[], folder: string): Promise<number> {
  let need = 0;
  for (const e of entries) {
    if (await hasCachedFile(folder, e.path)) continue;
    const etag = e.lfs?.oid ?? e.oid;
    if (etag === undefined || (await exists(blobPath(ctx.storage, etag)))) continue;
    need += (e.lfs?.size ?? e.size) - (await fileSize(incompletePath(ctx.storage, etag)));
  }
  if (need <= 0) return 0;
  const blobs = path.join(ctx.storage, 'blobs');
  await makeFolder(blobs);
  let free: number;
  try {
    const s = await fsp.statfs(blobs);
    free = s.bavail * s.bsize;
  } catch {
    return need;
  }
  if (free < need) {
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
    throw new HubError(`not enough disk space for ${ctx.label}: ${gib(need)} to download into ${blobs}, ${gib(free)} free (set HF_HOME or HF_HUB_CACHE to another disk)`);
  }
  return need;
}

/**
 * Fetch `files` of any repo (model or dataset) into the cache and return the snapshot. A commit-hash
 * revision whose files are all cached is served without asking the hub.
 */
export async function downloadRepoFiles(req: RepoFilesRequest): Promise<SnapshotResult> {
  return fetchSnapshot(req.repo, explicitPlan(req.files), req, true);
}

/** Fetch what a model needs (config, tokenizer files, weights) into the cache and return the snapshot. */
export async function downloadModel(name: string, opts: DownloadOptions = {}): Promise<SnapshotResult> {
  return fetchSnapshot({ type: 'model', name }, modelFilePlan, opts, false);
}

/**
 * A model folder to load from: `nameOrPath` itself when it is an existing local folder (no network),
 * else the cache snapshot of the hub repo `org/name`, fetched as needed.
 */
export async function resolveModelFolder(nameOrPath: string, opts: ModelFolderOptions = {}): Promise<string> {
  const st = statSync(nameOrPath, { throwIfNoEntry: false });
  if (st?.isDirectory()) return nameOrPath;
  if (st !== undefined) throw new InputError(`${nameOrPath} is a file: expected a model folder or a Hugging Face repo id (org/name)`);
  if (looksLikePath(nameOrPath)) throw new InputError(`model folder ${nameOrPath} does not exist`);
  const problem = repoIdProblem(nameOrPath);
  if (problem !== undefined) {
    throw new InputError(`${JSON.stringify(nameOrPath)} is neither an existing folder nor a Hugging Face repo id (org/name): ${problem}`);
  }
  const repo: RepoRef = { type: opts.repoType ?? 'model', name: nameOrPath };
  const files = opts.files ?? 'model';
  if (files === 'model' && repo.type !== 'model') {
    throw new InputError(`${repoLabel(repo)}: files 'model' needs a model repo; name the files to fetch from a ${repo.type}`);
  }
  const result = files === 'model'
    ? await fetchSnapshot(repo, modelFilePlan, opts, false)
    : await fetchSnapshot(repo, explicitPlan(files), opts, true);
  return result.folder;
}
