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
import { type TokenProvider } from './tokens.js';
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
export type Change = {
    seq: number;
    op: 'upsert';
    sample: Sample;
} | {
    seq: number;
    op: 'delete';
    id: string;
};
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
export declare class ClarityRest {
    private readonly url;
    private readonly tokens;
    private readonly fetch;
    constructor(options: RestOptions);
    /** An authenticated call; its response, or an `ApiError` / `AuthError`. */
    raw(method: string, path: string, options?: {
        body?: unknown;
        query?: Query;
        headers?: Record<string, string>;
    }): Promise<Response>;
    json<T>(method: string, path: string, options?: {
        body?: unknown;
        query?: Query;
    }): Promise<T>;
    private pages;
    profile(): Promise<Profile>;
    /** `POST /api/v1/health-data` (up to 10,000 samples); durable when it resolves. */
    upload(samples: Sample[]): Promise<UploadResult>;
    /** Every stored sample matching `query`, ordered by (start, id), page by page. */
    history(query?: HistoryQuery): AsyncGenerator<Sample>;
    deleteSamples(ids: string[]): Promise<DeleteResult>;
    /** `true` when deleted, `false` when it was not stored. */
    deleteSample(id: string): Promise<boolean>;
    /**
     * The change feed from `since` (a `next_token`; omitted or `"0"`: every current sample),
     * one page at a time until `more` is false. The last page's `next_token` is where to go on
     * later. A 410 `resync_required` means: start again from `"0"` and replace the local copy.
     */
    changes(since?: string, limit?: number): AsyncGenerator<ChangePage>;
    /** Analytics of the last week now (201 new, 200 unchanged); `no_data` without activity. */
    analyze(): Promise<Analysis>;
    analyses(query?: DocumentQuery): AsyncGenerator<Analysis>;
    analysis(id: string, userId?: string): Promise<Analysis>;
    createInsight(): Promise<Insight>;
    insights(query?: DocumentQuery): AsyncGenerator<Insight>;
    insight(id: string, userId?: string): Promise<Insight>;
    shares(): Promise<{
        granted: Share[];
        received: Share[];
    }>;
    share(granteeEmail: string, scope: Scope): Promise<Share>;
    unshare(shareId: string): Promise<void>;
    /**
     * `GET /api/v1/export`: everything stored of the caller, one object per line (`profile`,
     * `sample`, `analysis`, `insight`, `share`, `audit`, then `end`), parsed as it streams. An
     * `error` line (the export broke off) throws.
     */
    export(): AsyncGenerator<Record<string, unknown> & {
        type: string;
    }>;
}
export {};
