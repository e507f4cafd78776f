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
    /** what the Retry-After header asked for, in ms */
    readonly retryAfterMs?: number,
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
  return new HubHttpError(res.url || url, res.status, code, message, retryAfterMs(res.headers.get('Retry-After')));
}

/** Retry-After as delay-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Whether a failed request is worth another try: the hub's 5xx and 429, or the network. */
export function isTransient(err: unknown): boolean {
  if (err instanceof HubHttpError) return err.status >= 500 || err.status === 429;
  return isNetworkError(err);
}

/** AbortSignal.any (Node 20.3+), or the same made by hand on older Node 20 releases. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any(signals);
  const ac = new AbortController();
  for (const s of signals) {
    if (s.aborted) { ac.abort(s.reason); break; }
    s.addEventListener('abort', () => ac.abort(s.reason), { once: true });
  }
  return ac.signal;
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason as Error); return; }
    const onAbort = () => { clearTimeout(t); reject(signal!.reason as Error); };
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The delay before retry `attempt` (0-based): Retry-After when the hub sent one, else doubling from `baseMs`. */
function retryDelay(err: unknown, attempt: number, baseMs: number): number {
  const asked = err instanceof HubHttpError ? err.retryAfterMs : undefined;
  return asked ?? baseMs * 2 ** attempt;
}

export interface RetryOptions {
  /** further tries after the first */
  retries: number;
  /** delay before the first retry without Retry-After, doubled each time (ms) */
  retryDelayMs: number;
  /** the longest Retry-After honoured; the hub asking for more ends the retries (ms) */
  maxRetryAfterMs: number;
  /** ends the retries and any wait; its reason is what is thrown */
  signal?: AbortSignal | undefined;
  /** whether a failure is worth another try (default isTransient) */
  retryable?: (err: unknown) => boolean;
}

/** Runs `fn`, trying again after a retryable failure, waiting as retryDelay says. */
export async function withRetries<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const retryable = o.retryable ?? isTransient;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason as Error;
      const delay = retryDelay(err, attempt, o.retryDelayMs);
      if (attempt >= o.retries || !retryable(err) || delay > o.maxRetryAfterMs) throw err;
      await sleep(delay, o.signal);
    }
  }
}

/**
 * An overall deadline for one hub command: its signal aborts with a HubError once the time is up.
 * `extend` adds time (downloads get more the more bytes they fetch).
 */
export class Deadline {
  private readonly ac = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private end: number;

  constructor(ms: number, private readonly what: string) {
    this.end = Date.now() + ms;
    this.arm();
  }

  get signal(): AbortSignal { return this.ac.signal; }

  extend(ms: number): void {
    this.end += ms;
    this.arm();
  }

  clear(): void { clearTimeout(this.timer); }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.ac.signal.aborted) return;
    const left = Math.max(0, this.end - Date.now());
    this.timer = setTimeout(() => this.ac.abort(new HubError(`${this.what}: gave up after its deadline; the hub is too slow or keeps failing (set DITTY_HUB_DEADLINE to more seconds to wait longer)`)), Math.min(left, 2 ** 31 - 1));
    this.timer.unref();
  }
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
  /** further tries of a request after a 5xx, 429 or network failure (default 0) */
  retries?: number;
  /** delay before the first retry without Retry-After, doubled each time (ms, default 1000) */
  retryDelayMs?: number;
  /** the longest Retry-After honoured; the hub asking for more ends the retries (ms, default 30 s) */
  maxRetryAfterMs?: number;
  /** aborts every request (an overall deadline) */
  signal?: AbortSignal;
  /** pages of one tree listing followed at most (default 10,000) */
  maxPages?: number;
}

/**
 * The fetch handed to @huggingface/hub: adds the token when asked to, a timeout, and turns error
 * statuses and socket failures into HubHttpError / HubNetworkError that keep the hub's
 * X-Error-Code (which the library's own errors drop).
 */
export function hubFetch(opts: HubFetchOptions = {}): typeof fetch {
  const base = opts.base ?? globalThis.fetch;
  const retry: RetryOptions = { retries: opts.retries ?? 0, retryDelayMs: opts.retryDelayMs ?? 1000, maxRetryAfterMs: opts.maxRetryAfterMs ?? 30_000, signal: opts.signal };
  const maxPages = opts.maxPages ?? 10_000;
  // Tree listings are paginated with Link: rel="next"; a hub (or proxy) whose next link loops would
  // be followed for ever by the library, so a page asked for twice, or too many pages, ends it.
  const treePages = new Set<string>();
  const once = async (input: Parameters<typeof fetch>[0], init: RequestInit | undefined, url: string): Promise<Response> => {
    const headers = new Headers(init?.headers);
    if (opts.token !== undefined && !headers.has('authorization')) headers.set('Authorization', `Bearer ${opts.token}`);
    const signals = [opts.timeoutMs !== undefined ? AbortSignal.timeout(opts.timeoutMs) : undefined, opts.signal, init?.signal ?? undefined]
      .filter((x): x is AbortSignal => x !== undefined);
    const signal = signals.length > 1 ? anySignal(signals) : signals[0];
    let res: Response;
    try {
      res = await base(input, { ...init, headers, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason as Error;
      if (isNetworkError(err)) throw new HubNetworkError(url, describeFetchFailure(err), { cause: err });
      throw err;
    }
    if (!res.ok) throw await httpErrorFrom(res, url);
    return res;
  };
  return async (input, init) => {
    const url = urlOf(input);
    if ((init?.method ?? 'GET') === 'GET' && /\/api\/(models|datasets|spaces)\/.+\/tree\//.test(new URL(url).pathname)) {
      if (treePages.has(url)) throw new HubError(`the hub's file listing came back to a page it already gave (${url}): its Link: rel="next" loops; try again later`);
      if (treePages.size >= maxPages) throw new HubError(`the hub's file listing did not end after ${maxPages} pages (${url}); try again later`);
      treePages.add(url);
    }
    return withRetries(() => once(input, init, url), retry);
  };
}
