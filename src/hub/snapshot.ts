/**
 * A repo's snapshot in the standard Hugging Face cache: the files a plan chooses, fetched as needed,
 * or found in the cache alone.
 *
 * Online:  GET /api/{models|datasets}/{repo}/revision/{rev}   -> the commit (sha); refs/<rev> is written
 *          GET /api/{models|datasets}/{repo}/tree/{commit}?recursive=true  -> files, sizes, etags
 *          GET {repo}/resolve/{commit}/{path}  (Range to resume)   -> blobs/<etag>, snapshots/<commit>/<path>
 * Offline (HF_HUB_OFFLINE, or the hub unreachable): the same files from the cache only.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { datasetInfo, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { InputError } from '../io/errors.js';
import { makeFolder } from '../io/make-folder.js';
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
import { hubSettings } from './env.js';
import { cacheFallbackReason, downloadFailure, explainHttp, type HubTarget } from './errors.js';
import { fetchBlob, fileSize, type BlobCheck } from './fetch-blob.js';
import { Deadline, HubError, HubHttpError, hubFetch } from './http.js';
import { NoWeightsError, type FilePlan } from './plan.js';
import { consoleProgress, silentProgress, type ProgressReporter } from './progress.js';
import { checkRepo, checkRevision, DEFAULT_REVISION, isCommitHash, repoLabel, type RepoRef } from './repo.js';

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

export interface SnapshotResult {
  /** snapshots/<commit> in the cache: the files lie here under their repo paths */
  folder: string;
  commit: string;
  /** the repo paths that were fetched or found */
  files: string[];
  /** true when the result came from the cache alone, without asking the hub */
  fromCache: boolean;
}

/** Bytes a download is allowed per second of deadline beyond the base (a very slow link still finishes). */
const DEADLINE_BYTES_PER_S = 256 * 1024;
/** Retries of one metadata request (a transient 5xx or 429); then the cache, if complete, is used. */
const METADATA_RETRIES = 2;

interface Context extends HubTarget {
  repo: RepoRef;
  storage: string;
  fetch: typeof fetch;
  progress: ProgressReporter;
  retries: number;
  retryDelayMs: number;
  deadline: Deadline;
  /** whether deadlineMs was given (then downloads do not extend it) */
  fixedDeadline: boolean;
}

/** What the hub says a revision is: its commit and the files there, by repo path. */
interface Listing {
  commit: string;
  files: Map<string, ListFileEntry>;
}

/**
 * The snapshot of `repo` holding the files `plan` chooses, fetched into the cache as needed.
 * `cacheFirst`: a commit-hash revision whose files are all cached is served without asking the hub.
 */
export async function fetchSnapshot(repo: RepoRef, plan: FilePlan, opts: DownloadOptions, cacheFirst: boolean): Promise<SnapshotResult> {
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
  const { revision, settings } = ctx;
  if (settings.offline) return fromCache(ctx, plan, 'HF_HUB_OFFLINE is set');
  if (cacheFirst && isCommitHash(revision)) {
    // A commit never changes: when everything is cached there is nothing to ask the hub.
    try { return await fromCache(ctx, plan, 'cached'); } catch { /* fetch what is missing */ }
  }

  let listing: Listing;
  try {
    listing = await listRevision(ctx);
  } catch (err) {
    const reason = cacheFallbackReason(err, settings.endpoint);
    if (reason !== undefined) return fromCache(ctx, plan, reason);
    if (err instanceof HubHttpError) throw explainHttp(err, ctx);
    throw err;
  }
  const { commit } = listing;
  await writeRef(ctx.storage, revision, commit);
  const folder = snapshotFolder(ctx.storage, commit);

  const has = async (p: string) => listing.files.has(p);
  const read = async (p: string) => { await ensureFile(ctx, listing, p); return fsp.readFile(path.join(folder, p), 'utf8'); };
  let files: string[];
  try {
    files = await plan({ has, read, where: `${ctx.label}@${revision}` });
  } catch (err) {
    if (err instanceof NoWeightsError) throw new HubError(`${ctx.label} at revision "${revision}" has no ${err.message}`);
    throw err;
  }
  const missing = files.filter((f) => !listing.files.has(f));
  if (missing.length > 0) {
    throw new HubError(`${ctx.label} at revision "${revision}" has no ${missing.join(', ')}`);
  }

  const need = await checkDiskSpace(ctx, files.map((f) => listing.files.get(f)!), folder);
  if (!ctx.fixedDeadline) ctx.deadline.extend(Math.ceil(need / DEADLINE_BYTES_PER_S) * 1000);
  for (const f of files) await ensureFile(ctx, listing, f);
  return { folder, commit, files, fromCache: false };
}

/** Ask the hub for the revision's commit (written to refs/ by the caller) and its files. */
async function listRevision(ctx: Context): Promise<Listing> {
  const { repo, revision, settings } = ctx;
  // @huggingface/hub only takes tokens that start with "hf_"; others go in our own header.
  const libToken = settings.token?.startsWith('hf_') ? settings.token : undefined;
  const apiFetch = hubFetch({
    base: ctx.fetch,
    ...(settings.token !== undefined && libToken === undefined ? { token: settings.token } : {}),
    timeoutMs: settings.metadataTimeoutS * 1000,
    retries: Math.min(ctx.retries, METADATA_RETRIES),
    retryDelayMs: ctx.retryDelayMs,
    signal: ctx.deadline.signal,
  });
  const common = { hubUrl: settings.endpoint, fetch: apiFetch, ...(libToken !== undefined ? { accessToken: libToken } : {}) };
  const info = repo.type === 'model'
    ? await modelInfo({ ...common, name: repo.name, revision, additionalFields: ['sha'] })
    : await datasetInfo({ ...common, name: repo.name, revision, additionalFields: ['sha'] });
  const commit = commitOf(info.sha, ctx);
  const files = new Map<string, ListFileEntry>();
  for await (const entry of listFiles({ ...common, repo, revision: commit, recursive: true })) {
    if (entry.type === 'file') files.set(entry.path, entry);
  }
  return { commit, files };
}

function commitOf(sha: unknown, ctx: Context): string {
  if (typeof sha !== 'string' || !isCommitHash(sha)) {
    throw new HubError(`${ctx.settings.endpoint} gave no commit hash for ${ctx.label} at revision "${ctx.revision}" (got ${JSON.stringify(sha)})`);
  }
  return sha;
}

/** Make `file` of the listed commit present in its snapshot folder: linked from its blob, downloaded first when the blob is not cached. */
async function ensureFile(ctx: Context, listing: Listing, file: string): Promise<void> {
  const { commit } = listing;
  const entry = listing.files.get(file);
  if (entry === undefined) throw new HubError(`${file} not found in ${ctx.label} at revision "${ctx.revision}"`);
  if (await hasCachedFile(snapshotFolder(ctx.storage, commit), file)) return;
  const { etag, check } = etagOf(entry, `${ctx.label}@${ctx.revision}/${file}`);
  if (!(await exists(blobPath(ctx.storage, etag)))) {
    const { settings } = ctx;
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
        lockDir: blobLockFolder(settings.cacheDir, ctx.repo),
      });
    } catch (err) {
      if (err instanceof HubHttpError) throw explainHttp(err, ctx, file);
      if (err instanceof InputError) throw err;
      const partial = incompletePath(ctx.storage, etag);
      throw downloadFailure(err as Error, ctx, file, await fileSize(partial), partial);
    }
  }
  await linkSnapshotFile(ctx.storage, commit, file, etag);
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
    files = await plan({ has, read, where: `${label}@${revision}` });
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
