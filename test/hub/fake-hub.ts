/**
 * A local stand-in for huggingface.co serving the endpoints ditty's hub code (and @huggingface/hub's
 * modelInfo / datasetInfo / listFiles / fileDownloadInfo) call, with the real hub's headers:
 *
 *   GET  /api/{models|datasets}/{org}/{name}/revision/{rev}?expand=...   repo info JSON, with "sha"
 *   GET  /api/{models|datasets}/{org}/{name}/tree/{rev}[/{dir}]?recursive=&expand=
 *        JSON array of {type, oid, size, path, lfs?}, paginated with Link: <...>; rel="next"
 *   GET|HEAD /{org}/{name}/resolve/{rev}/{path}, /datasets/{org}/{name}/resolve/{rev}/{path}
 *        regular files: 200 (or 206 for Range) with ETag "<git sha1>", X-Repo-Commit
 *        LFS files: 302 to /cdn-lfs/{sha256} with X-Linked-Etag, X-Linked-Size, X-Repo-Commit
 *   GET|HEAD /cdn-lfs/{sha256}   the bytes, with Accept-Ranges / Range / Content-Range
 *
 * Errors carry X-Error-Code like the hub: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  path: string;
  content: Buffer;
  /** stored with LFS (etag = sha256); default: by extension (.safetensors, .bin, .msgpack, .jsonl) */
  lfs?: boolean;
}

export interface FakeRepo {
  type: 'model' | 'dataset';
  name: string;
  /** branch/tag -> commit */
  refs: Record<string, string>;
  /** commit -> files */
  commits: Record<string, FakeFile[]>;
  /** requests need `Authorization: Bearer <hub.token>`; without it: 401 RepoNotFound, like the hub */
  private?: boolean;
  /** like private, but the hub says GatedRepo */
  gated?: boolean;
}

export interface LoggedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  status?: number;
}

export const gitBlobSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function isLfs(f: FakeFile): boolean {
  return f.lfs ?? /\.(safetensors|bin|msgpack|jsonl|h5)$/.test(f.path);
}

/** The name under which ditty (and Python) store a file's blob. */
export function etagOf(f: FakeFile): string {
  return isLfs(f) ? sha256(f.content) : gitBlobSha1(f.content);
}

export class FakeHub {
  readonly log: LoggedRequest[] = [];
  /** the token private/gated repos accept */
  token = 'hf_test_token_123';
  /** files (repo paths) whose next body GET is cut off half way, once each */
  cutOnce = new Set<string>();
  /** files whose bytes are served with one byte flipped */
  corrupt = new Set<string>();
  /** honour Range requests (the hub and its CDN do) */
  ranges = true;
  /** tree listing page size */
  pageSize = 3;
  /** answer requests whose path contains `match` with `status` (and Retry-After), `times` times */
  failures: { match: string; status: number; retryAfter?: string; times: number }[] = [];
  /** tree pages whose Link: rel="next" points back at the first page */
  loopTree = false;
  /** wait this long before answering /api/ requests (ms) */
  apiDelayMs = 0;
  /** wait this long before sending file bytes (ms) */
  bytesDelayMs = 0;
  private server?: http.Server;
  private repos = new Map<string, FakeRepo>();
  endpoint = '';

  constructor(repos: FakeRepo[]) {
    for (const r of repos) this.repos.set(`${r.type}s/${r.name}`, r);
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const entry: LoggedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
      this.log.push(entry);
      res.on('finish', () => { entry.status = res.statusCode; });
      try {
        const failure = this.failures.find((f) => f.times > 0 && decodeURIComponent(req.url ?? '').includes(f.match));
        if (failure !== undefined) {
          failure.times--;
          res.writeHead(failure.status, { 'Content-Type': 'text/plain', ...(failure.retryAfter !== undefined ? { 'Retry-After': failure.retryAfter } : {}) });
          res.end(`fake hub: failing with ${failure.status}`);
          return;
        }
        const delay = (req.url ?? '').startsWith('/api/') ? this.apiDelayMs : this.bytesDelayMs;
        if (delay > 0) setTimeout(() => { if (!res.destroyed) this.handle(req, res); }, delay);
        else this.handle(req, res);
      } catch (err) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(err));
      }
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  /** requests whose path contains `s` */
  requests(s: string): LoggedRequest[] {
    return this.log.filter((r) => decodeURIComponent(r.url).includes(s));
  }

  private error(res: http.ServerResponse, status: number, code: string | undefined, message: string): void {
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      ...(code ? { 'X-Error-Code': code } : {}),
      'X-Error-Message': message,
    });
    res.end(JSON.stringify({ error: message }));
  }

  /** The repo and commit for a request, or undefined after answering with an error. */
  private lookup(req: http.IncomingMessage, res: http.ServerResponse, key: string, rev: string) {
    const repo = this.repos.get(key);
    const authorized = req.headers.authorization === `Bearer ${this.token}`;
    if (repo === undefined || (repo.private && !authorized)) {
      // like the hub: 401 when the request is anonymous or the token is refused, 404 for a valid token
      this.error(res, repo === undefined && authorized ? 404 : 401, 'RepoNotFound', 'Repository not found');
      return undefined;
    }
    if (repo.gated && !authorized) {
      this.error(res, 401, 'GatedRepo', `Access to model ${repo.name} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      return undefined;
    }
    const commit = /^[0-9a-f]{40}$/.test(rev) && repo.commits[rev] ? rev : repo.refs[rev];
    if (commit === undefined || repo.commits[commit] === undefined) {
      this.error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return undefined;
    }
    return { repo, commit, files: repo.commits[commit]! };
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.endpoint);
    const p = url.pathname;
    let m: RegExpExecArray | null;

    if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(p))) {
      const found = this.lookup(req, res, `${m[1]}/${m[2]}`, decodeURIComponent(m[3]!));
      if (!found) return;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({
        _id: `id-${found.repo.name}`,
        id: found.repo.name,
        private: !!found.repo.private,
        gated: found.repo.gated ? 'auto' : false,
        downloads: 0,
        likes: 0,
        lastModified: '2024-01-01T00:00:00.000Z',
        sha: found.commit,
        siblings: found.files.map((f) => ({ rfilename: f.path })),
      }));
      return;
    }

    if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(p))) {
      const found = this.lookup(req, res, `${m[1]}/${m[2]}`, decodeURIComponent(m[3]!));
      if (!found) return;
      const dir = m[4] ? decodeURIComponent(m[4]) : '';
      const recursive = url.searchParams.get('recursive') === 'true';
      const entries: object[] = [];
      const dirs = new Set<string>();
      for (const f of found.files) {
        if (dir && !f.path.startsWith(`${dir}/`)) continue;
        const rest = dir ? f.path.slice(dir.length + 1) : f.path;
        const parts = rest.split('/');
        if (parts.length > 1) {
          for (let i = 1; i < (recursive ? parts.length : 2); i++) {
            const d = [dir, ...parts.slice(0, i)].filter(Boolean).join('/');
            if (!dirs.has(d)) { dirs.add(d); entries.push({ type: 'directory', oid: gitBlobSha1(Buffer.from(d)), size: 0, path: d }); }
          }
          if (!recursive) continue;
        }
        entries.push({
          type: 'file',
          oid: isLfs(f) ? gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.content)}\nsize ${f.content.length}\n`)) : gitBlobSha1(f.content),
          size: f.content.length,
          path: f.path,
          ...(isLfs(f) ? { lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}),
        });
      }
      const cursor = Number(url.searchParams.get('cursor') ?? '0');
      const page = entries.slice(cursor, cursor + this.pageSize);
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (cursor + this.pageSize < entries.length) {
        const next = new URL(url);
        next.searchParams.set('cursor', String(this.loopTree ? 0 : cursor + this.pageSize));
        headers['Link'] = `<${next.href}>; rel="next"`;
      }
      res.writeHead(200, headers);
      res.end(JSON.stringify(page));
      return;
    }

    if ((m = /^\/(?:(datasets)\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p))) {
      const found = this.lookup(req, res, `${m[1] ?? 'models'}/${m[2]}`, decodeURIComponent(m[3]!));
      if (!found) return;
      const file = m[4]!.split('/').map(decodeURIComponent).join('/');
      const f = found.files.find((x) => x.path === file);
      if (f === undefined) {
        this.error(res, 404, 'EntryNotFound', `${file} does not exist on "${m[3]}"`);
        return;
      }
      const common = { 'X-Repo-Commit': found.commit };
      if (isLfs(f)) {
        res.writeHead(302, {
          ...common,
          Location: `${this.endpoint}/cdn-lfs/${sha256(f.content)}?file=${encodeURIComponent(f.path)}`,
          'X-Linked-Etag': `"${sha256(f.content)}"`,
          'X-Linked-Size': String(f.content.length),
          ETag: `"${gitBlobSha1(f.content)}"`,
        });
        res.end();
        return;
      }
      this.sendBytes(req, res, f, { ...common, ETag: `"${gitBlobSha1(f.content)}"` });
      return;
    }

    if ((m = /^\/cdn-lfs\/([0-9a-f]{64})$/.exec(p))) {
      const file = url.searchParams.get('file') ?? '';
      for (const r of this.repos.values()) {
        for (const files of Object.values(r.commits)) {
          const f = files.find((x) => x.path === file && sha256(x.content) === m![1]);
          if (f) { this.sendBytes(req, res, f, { ETag: `"${m[1]}"` }); return; }
        }
      }
      res.writeHead(404);
      res.end('no such object');
      return;
    }

    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end(`fake hub: no route for ${req.method} ${p}`);
  }

  private sendBytes(req: http.IncomingMessage, res: http.ServerResponse, f: FakeFile, headers: Record<string, string>): void {
    let body = f.content;
    if (this.corrupt.has(f.path)) {
      body = Buffer.from(body);
      body[body.length - 1] ^= 0xff;
    }
    const total = body.length;
    let start = 0;
    let end = total - 1;
    let status = 200;
    const range = this.ranges ? req.headers.range : undefined;
    if (range !== undefined) {
      const r = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!r || Number(r[1]) >= total) {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${total}` });
        res.end();
        return;
      }
      start = Number(r[1]);
      end = r[2] ? Math.min(Number(r[2]), total - 1) : total - 1;
      status = 206;
    }
    const slice = body.subarray(start, end + 1);
    res.writeHead(status, {
      ...headers,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(slice.length),
      'Accept-Ranges': 'bytes',
      ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${total}` } : {}),
    });
    if (req.method === 'HEAD') { res.end(); return; }
    if (this.cutOnce.has(f.path) && range !== 'bytes=0-0') {
      this.cutOnce.delete(f.path);
      const half = Math.floor(slice.length / 2);
      res.write(slice.subarray(0, half), () => {
        // let the bytes reach the client, then drop the connection mid-body
        setTimeout(() => res.socket?.destroy(), 50);
      });
      return;
    }
    res.end(slice);
  }
}
