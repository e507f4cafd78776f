import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Hugging Face hub settings read from the environment, with the defaults Python huggingface_hub uses. */
export interface HubSettings {
  /** $HF_HOME, default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface */
  readonly home: string;
  /** $HF_HUB_CACHE (or legacy $HUGGINGFACE_HUB_CACHE), default $HF_HOME/hub */
  readonly cacheDir: string;
  /** $HF_TOKEN (or legacy $HUGGING_FACE_HUB_TOKEN), else the token file ($HF_TOKEN_PATH, default $HF_HOME/token) */
  readonly token?: string;
  /** where the token came from, for messages: 'HF_TOKEN', a file path, or undefined */
  readonly tokenSource?: string;
  /** $HF_HUB_OFFLINE is 1/true/yes/on */
  readonly offline: boolean;
  /** $HF_ENDPOINT, default https://huggingface.co, without a trailing slash */
  readonly endpoint: string;
  /** $HF_HUB_DOWNLOAD_TIMEOUT seconds without a byte before a download is given up (default 10) */
  readonly downloadTimeoutS: number;
  /** $HF_HUB_ETAG_TIMEOUT seconds for metadata requests (default 10) */
  readonly metadataTimeoutS: number;
  /**
   * $DITTY_HUB_DEADLINE seconds one hub command may take in all (default 900), plus one second per
   * 256 KiB it downloads: retries, slow servers and looping listings all end by then.
   */
  readonly deadlineS: number;
}

const DEFAULT_ENDPOINT = 'https://huggingface.co';

function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === '' ? undefined : t;
}

/** Python's `_is_true`: 1, ON, YES, TRUE (any case). */
export function isTruthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());
}

function seconds(v: string | undefined, dflt: number): number {
  const n = Number(nonEmpty(v));
  return Number.isFinite(n) && n > 0 ? n : dflt;
}

/** Read the hub settings from `env` (default process.env) at call time. */
export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const home = expandHome(
    nonEmpty(env['HF_HOME']) ?? path.join(nonEmpty(env['XDG_CACHE_HOME']) ?? path.join(os.homedir(), '.cache'), 'huggingface'),
  );
  const cacheDir = expandHome(nonEmpty(env['HF_HUB_CACHE']) ?? nonEmpty(env['HUGGINGFACE_HUB_CACHE']) ?? path.join(home, 'hub'));

  let token: string | undefined;
  let tokenSource: string | undefined;
  for (const name of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN']) {
    const t = nonEmpty(env[name]);
    if (t !== undefined) { token = t; tokenSource = name; break; }
  }
  if (token === undefined) {
    const file = expandHome(nonEmpty(env['HF_TOKEN_PATH']) ?? path.join(home, 'token'));
    try {
      const t = nonEmpty(fs.readFileSync(file, 'utf8'));
      if (t !== undefined) { token = t; tokenSource = file; }
    } catch { /* no token file: anonymous */ }
  }

  const endpoint = (nonEmpty(env['HF_ENDPOINT']) ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  return {
    home,
    cacheDir,
    ...(token !== undefined ? { token, tokenSource } : {}),
    offline: isTruthy(env['HF_HUB_OFFLINE']),
    endpoint,
    downloadTimeoutS: seconds(env['HF_HUB_DOWNLOAD_TIMEOUT'], 10),
    metadataTimeoutS: seconds(env['HF_HUB_ETAG_TIMEOUT'], 10),
    deadlineS: seconds(env['DITTY_HUB_DEADLINE'], 900),
  };
}
