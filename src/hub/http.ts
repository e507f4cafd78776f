import { InputError } from '../io/errors.js';

/** A hub failure with a message meant for the user (printed without a stack, like every InputError). */
export class HubError extends InputError {}

/** The hub answered with an HTTP error status. */
export class HubHttpError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
    /** the hub's X-Error-Code header: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo, ... */
    readonly errorCode: string | undefined,
    readonly serverMessage: string | undefined,
  ) {
    super(`HTTP ${status}${errorCode ? ` (${errorCode})` : ''} for ${url}${serverMessage ? `: ${serverMessage}` : ''}`);
  }
}

/** The hub could not be reached, or a connection broke or stalled. */
export class HubNetworkError extends Error {
  constructor(readonly url: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`${reason} (${url})`, options);
  }
}

/** A short description of what a fetch failure was (fetch hides the socket error in `cause`). */
export function describeFetchFailure(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timed out';
  const code = e?.cause?.code ?? e?.code;
  const msg = e?.cause?.message ?? e?.message ?? String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

/** Whether `err` means "the network failed" rather than "the hub said no". */
export function isNetworkError(err: unknown): boolean {
  if (err instanceof HubNetworkError) return true;
  if (err instanceof HubHttpError || err instanceof InputError) return false;
  const e = err as { name?: string; message?: string; code?: string } | null;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return true;
  if (err instanceof TypeError && (e?.message === 'fetch failed' || e?.message === 'terminated')) return true;
  return typeof e?.code === 'string' && /^(ECONN|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EPIPE|ENETUNREACH|EHOSTUNREACH|UND_ERR)/.test(e.code);
}

/** Build a HubHttpError from a response with an error status (reads the body). */
export async function httpErrorFrom(res: Response, url: string): Promise<HubHttpError> {
  const code = res.headers.get('X-Error-Code') ?? undefined;
  let message = res.headers.get('X-Error-Message') ?? undefined;
  try {
    const text = await res.text();
    if (message === undefined && text) {
      try {
        const j = JSON.parse(text) as { error?: unknown; message?: unknown };
        const m = j.error ?? j.message;
        message = typeof m === 'string' ? m : text.slice(0, 200);
      } catch {
        message = text.slice(0, 200);
      }
    }
  } catch { /* body unreadable: status is enough */ }
  return new HubHttpError(res.url || url, res.status, code, message);
}

function urlOf(input: Parameters<typeof fetch>[0]): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

export interface HubFetchOptions {
  /** the fetch to wrap (default globalThis.fetch) */
  base?: typeof fetch;
  /** sent as `Authorization: Bearer ...` when the request has none */
  token?: string;
  /** abort a request that takes longer than this, body included (ms) */
  timeoutMs?: number;
}

/**
 * The fetch handed to @huggingface/hub: adds the token when asked to, a timeout, and turns error
 * statuses and socket failures into HubHttpError / HubNetworkError that keep the hub's
 * X-Error-Code (which the library's own errors drop).
 */
export function hubFetch(opts: HubFetchOptions = {}): typeof fetch {
  const base = opts.base ?? globalThis.fetch;
  return async (input, init) => {
    const url = urlOf(input);
    const headers = new Headers(init?.headers);
    if (opts.token !== undefined && !headers.has('authorization')) headers.set('Authorization', `Bearer ${opts.token}`);
    const signal = opts.timeoutMs !== undefined ? AbortSignal.timeout(opts.timeoutMs) : undefined;
    let res: Response;
    try {
      res = await base(input, { ...init, headers, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (isNetworkError(err)) throw new HubNetworkError(url, describeFetchFailure(err), { cause: err });
      throw err;
    }
    if (!res.ok) throw await httpErrorFrom(res, url);
    return res;
  };
}
