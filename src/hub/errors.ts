/** Hub failures as one-line messages that say what to do: HTTP answers, unreachable hubs, broken downloads. */
import type { HubSettings } from './env.js';
import { HubError, HubHttpError, HubNetworkError, isNetworkError } from './http.js';

/** What a request to the hub was about, for messages. */
export interface HubTarget {
  /** the repo as users name it (repoLabel) */
  readonly label: string;
  readonly revision: string;
  readonly settings: HubSettings;
}

function tokenNote(s: HubSettings): string {
  return s.token !== undefined
    ? `a token from ${s.tokenSource} was sent`
    : 'no token is set: HF_TOKEN, or the file $HF_HOME/token';
}

/** A user-facing message for an HTTP error from the hub (`file` when it came from downloading one). */
export function explainHttp(err: HubHttpError, target: HubTarget, file?: string): HubError {
  const { label, revision, settings } = target;
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

/**
 * Why the cache may serve instead, when a metadata request failed because the hub is down (5xx, or
 * 429 after the retries; as huggingface_hub) or out of reach; undefined when the failure is itself
 * the answer (a 404, a gated repo, ...).
 */
export function cacheFallbackReason(err: unknown, endpoint: string): string | undefined {
  if (err instanceof HubHttpError) {
    return err.status >= 500 || err.status === 429
      ? `${endpoint} answered HTTP ${err.status}${err.serverMessage ? ` (${err.serverMessage})` : ''}`
      : undefined;
  }
  if (!isNetworkError(err)) return undefined;
  return `cannot reach ${endpoint} (${err instanceof HubNetworkError ? err.reason : String((err as Error).message)})`;
}

/** A download of `file` that failed after its retries; `kept` bytes of it wait in `partial` for the next run. */
export function downloadFailure(err: Error, target: HubTarget, file: string, kept: number, partial: string): HubError {
  return new HubError(
    `download of ${file} from ${target.label} (revision "${target.revision}") failed: ${err.message}` +
    (kept > 0 ? `; ${kept} bytes are kept in ${partial} and the next run resumes from there` : ''),
  );
}
