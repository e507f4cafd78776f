/** hubFetch on its own: the page cap of a tree listing, and which failures are tried again. */
import { describe, expect, it } from 'vitest';
import { HubError, hubFetch, HubHttpError } from '../../src/hub/http.js';

const TREE = 'https://hub.test/api/models/org/name/tree/main';

/** A base fetch that answers `status` and counts its calls. */
function counting(status: number): { fetch: typeof fetch; calls: () => number } {
  let n = 0;
  const base = (() => { n++; return Promise.resolve(new Response('{}', { status })); }) as typeof fetch;
  return { fetch: base, calls: () => n };
}

describe('hubFetch', () => {
  it('ends a tree listing that goes on past maxPages distinct pages', async () => {
    const base = counting(200);
    const f = hubFetch({ base: base.fetch, maxPages: 2 });
    await f(`${TREE}?cursor=1`);
    await f(`${TREE}?cursor=2`);
    await expect(f(`${TREE}?cursor=3`)).rejects.toThrow(HubError);
    await expect(f(`${TREE}?cursor=4`)).rejects.toThrow(/did not end after 2 pages/);
    expect(base.calls()).toBe(2);
  });

  it('tries a 503 again up to `retries` times, and a 404 only once', async () => {
    const busy = counting(503);
    await expect(hubFetch({ base: busy.fetch, retries: 2, retryDelayMs: 1 })('https://hub.test/api/models/org/name')).rejects.toThrow(HubHttpError);
    expect(busy.calls()).toBe(3);
    const missing = counting(404);
    await expect(hubFetch({ base: missing.fetch, retries: 2, retryDelayMs: 1 })('https://hub.test/api/models/org/name')).rejects.toThrow(/HTTP 404/);
    expect(missing.calls()).toBe(1);
  });
});
