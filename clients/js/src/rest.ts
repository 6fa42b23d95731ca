/**
 * REST helpers for the documented endpoints (docs/api.md): accounts, samples (upload,
 * history, deletion), analyses, insights, shares, the change feed and the export.
 *
 * Rules:
 * - Every call carries the provider's access token; a 401 refreshes it once and repeats the
 *   call, and a second 401 is an `AuthError` (never a loop).
 * - Listings are async iterators that follow `next_cursor` / `next_token` page by page, so a
 *   long history is never held whole.
 * - Errors are `ApiError` with the server's stable `code` and `retryAfterMs` from 429/503.
 */
import type { AnalysisFrame, InsightFrame, Sample } from './generated/index.js';
import { ApiError, AuthError, apiError } from './errors.js';
import { baseUrl, type TokenProvider } from './tokens.js';

/** A stored analysis as REST lists it (`superseded_by` on replaced ones). */
export type Analysis = Omit<AnalysisFrame, 'type' | 'stream' | 'offset'>;
export type Insight = Omit<InsightFrame, 'type' | 'stream' | 'offset'>;
export type Scope = 'analyses' | 'insights';

export interface Profile {
  user_id: string;
  email: string;
  display_name: string | null;
  created_at: string;
}

export interface Share {
  share_id: string;
  owner_id: string;
  owner_email: string;
  grantee_id: string;
  grantee_email: string;
  scope: Scope;
  created_at: string;
}

export interface Rejection {
  index: number;
  code: string;
  message: string;
}

export interface UploadResult {
  accepted: number;
  duplicates: number;
  updated: number;
  rejected: Rejection[];
  rejected_omitted: number;
}

export interface DeleteResult {
  deleted: number;
  not_found: number;
  not_found_ids: string[];
}

/** One entry of `GET /api/v1/changes`. */
export type Change =
  | { seq: number; op: 'upsert'; sample: Sample }
  | { seq: number; op: 'delete'; id: string };

export interface ChangePage {
  changes: Change[];
  next_token: string;
  more: boolean;
}

export interface HistoryQuery {
  kind?: string;
  /** RFC 3339 with offset, inclusive. */
  from?: string;
  /** RFC 3339 with offset, exclusive. */
  to?: string;
  /** Page size (1..=10000 for samples, 1..=500 for documents). */
  limit?: number;
}

export interface DocumentQuery extends Omit<HistoryQuery, 'kind'> {
  /** Another user's documents, with a share of that scope. */
  userId?: string;
}

export interface RestOptions {
  url: string;
  tokens: TokenProvider;
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | boolean | undefined>;

export class ClarityRest {
  private readonly url: string;
  private readonly tokens: TokenProvider;
  private readonly fetch: typeof fetch;

  constructor(options: RestOptions) {
    this.url = baseUrl(options.url);
    this.tokens = options.tokens;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** An authenticated call; its response, or an `ApiError` / `AuthError`. */
  async raw(method: string, path: string, options: { body?: unknown; query?: Query; headers?: Record<string, string> } = {}): Promise<Response> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query ?? {})) {
      if (v !== undefined) q.set(k, String(v));
    }
    const url = `${this.url}${path}${q.size ? `?${q}` : ''}`;
    const call = async (token: string) => {
      const headers: Record<string, string> = { accept: 'application/json', ...options.headers, authorization: `Bearer ${token}` };
      if (options.body !== undefined) headers['content-type'] = 'application/json';
      return this.fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        cache: 'no-store',
        credentials: 'omit',
      });
    };
    let resp = await call(await this.tokens.get());
    if (resp.status === 401) {
      await resp.body?.cancel();
      resp = await call(await this.tokens.refresh());
      if (resp.status === 401) {
        const e = await apiError(resp);
        throw new AuthError(e.code, e.message, 401);
      }
    }
    if (!resp.ok) throw await apiError(resp);
    return resp;
  }

  async json<T>(method: string, path: string, options: { body?: unknown; query?: Query } = {}): Promise<T> {
    const resp = await this.raw(method, path, options);
    if (resp.status === 204) return undefined as T;
    return (await resp.json()) as T;
  }

  private async *pages<T>(path: string, key: string, query: Query): AsyncGenerator<T> {
    let cursor: string | undefined;
    do {
      const body = await this.json<Record<string, unknown>>('GET', path, { query: { ...query, cursor } });
      for (const item of (body[key] as T[]) ?? []) yield item;
      cursor = (body.next_cursor as string | null) ?? undefined;
    } while (cursor);
  }

  // ---- account ---------------------------------------------------------------------------

  profile(): Promise<Profile> {
    return this.json('GET', '/api/v1/user/profile');
  }

  // ---- samples ---------------------------------------------------------------------------

  /** `POST /api/v1/health-data` (up to 10,000 samples); durable when it resolves. */
  upload(samples: Sample[]): Promise<UploadResult> {
    return this.json('POST', '/api/v1/health-data', { body: { samples } });
  }

  /** Every stored sample matching `query`, ordered by (start, id), page by page. */
  history(query: HistoryQuery = {}): AsyncGenerator<Sample> {
    return this.pages<Sample>('/api/v1/health-data', 'samples', { ...query });
  }

  deleteSamples(ids: string[]): Promise<DeleteResult> {
    return this.json('POST', '/api/v1/health-data/delete', { body: { ids } });
  }

  /** `true` when deleted, `false` when it was not stored. */
  async deleteSample(id: string): Promise<boolean> {
    try {
      await this.raw('DELETE', `/api/v1/health-data/${encodeURIComponent(id)}`);
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return false;
      throw e;
    }
  }

  /**
   * The change feed from `since` (a `next_token`; omitted or `"0"`: every current sample),
   * one page at a time until `more` is false. The last page's `next_token` is where to go on
   * later. A 410 `resync_required` means: start again from `"0"` and replace the local copy.
   */
  async *changes(since = '0', limit?: number): AsyncGenerator<ChangePage> {
    let token = since;
    for (;;) {
      const page = await this.json<ChangePage>('GET', '/api/v1/changes', { query: { since: token, limit } });
      yield page;
      token = page.next_token;
      if (!page.more) return;
    }
  }

  // ---- analyses and insights -------------------------------------------------------------

  /** Analytics of the last week now (201 new, 200 unchanged); `no_data` without activity. */
  analyze(): Promise<Analysis> {
    return this.json('POST', '/api/v1/analyses');
  }

  analyses(query: DocumentQuery = {}): AsyncGenerator<Analysis> {
    const { userId, ...rest } = query;
    return this.pages<Analysis>('/api/v1/analyses', 'analyses', { ...rest, user_id: userId });
  }

  analysis(id: string, userId?: string): Promise<Analysis> {
    return this.json('GET', `/api/v1/analyses/${encodeURIComponent(id)}`, { query: { user_id: userId } });
  }

  createInsight(): Promise<Insight> {
    return this.json('POST', '/api/v1/insights');
  }

  insights(query: DocumentQuery = {}): AsyncGenerator<Insight> {
    const { userId, ...rest } = query;
    return this.pages<Insight>('/api/v1/insights', 'insights', { ...rest, user_id: userId });
  }

  insight(id: string, userId?: string): Promise<Insight> {
    return this.json('GET', `/api/v1/insights/${encodeURIComponent(id)}`, { query: { user_id: userId } });
  }

  // ---- shares ----------------------------------------------------------------------------

  shares(): Promise<{ granted: Share[]; received: Share[] }> {
    return this.json('GET', '/api/v1/shares');
  }

  share(granteeEmail: string, scope: Scope): Promise<Share> {
    return this.json('POST', '/api/v1/shares', { body: { grantee_email: granteeEmail, scope } });
  }

  async unshare(shareId: string): Promise<void> {
    await this.raw('DELETE', `/api/v1/shares/${encodeURIComponent(shareId)}`);
  }

  // ---- export ----------------------------------------------------------------------------

  /**
   * `GET /api/v1/export`: everything stored of the caller, one object per line (`profile`,
   * `sample`, `analysis`, `insight`, `share`, `audit`, then `end`), parsed as it streams. An
   * `error` line (the export broke off) throws.
   */
  async *export(): AsyncGenerator<Record<string, unknown> & { type: string }> {
    const resp = await this.raw('GET', '/api/v1/export', { headers: { accept: 'application/x-ndjson' } });
    const reader = resp.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ended = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buf += value;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const obj = JSON.parse(line) as Record<string, unknown> & { type: string };
        if (obj.type === 'error') throw new ApiError(200, String(obj.code ?? 'export_failed'), String(obj.message ?? 'the export broke off'));
        if (obj.type === 'end') ended = true;
        yield obj;
      }
      if (done) break;
    }
    if (!ended) throw new ApiError(200, 'export_incomplete', 'the export ended without its end line: download it again');
  }
}
