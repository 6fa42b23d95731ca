/**
 * `ClarityClient`: one WebSocket session to the server, kept alive, carrying the outbox's
 * batches and the subscriptions, with the REST helpers beside it (`client.rest`).
 *
 * Rules (the protocol's, protocol/README.md, made the app's):
 * - Reconnect after any loss with jittered exponential backoff (`going_away` names its own
 *   delay); on each new session resend every unacknowledged batch, same ids, in order,
 *   keeping at most `maxInFlight` (capped by `welcome.limits.max_inflight_batches`) unacked,
 *   and waiting `retry_after_ms` after `rate_limited` / `store_unavailable` / `internal`.
 * - `token_expiring` → `tokens.refresh()` → `refresh` frame, in band: the session goes on.
 *   A close for the token (4001/4003), or a connection refused before `welcome`, refreshes
 *   first; a refresh the server refuses, a token refused after a refresh, or a closed login
 *   (4011) stops the client with an `AuthError` (state `failed`): no silent retries forever.
 * - A connection that says nothing for two heartbeat intervals is dropped and replaced (a
 *   half-open TCP connection otherwise holds acks forever).
 */
import type { Sample, ServerFrame } from './generated/index.js';
import { type BackoffOptions } from './backoff.js';
import { ClarityError } from './errors.js';
import { type BatchResult } from './outbox.js';
import { ClarityRest } from './rest.js';
import { type OutboxRecord, type OutboxStorage, type SeriesBody } from './storage.js';
import { Subscription, type Stream, type StreamEvent, type SubscribeOptions } from './subscriptions.js';
import { type TokenProvider } from './tokens.js';
/** The part of the WebSocket API the client uses (browsers', React Native's, node ≥ 22's). */
export interface WebSocketLike {
    readonly readyState: number;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    onmessage: ((ev: {
        data: unknown;
    }) => void) | null;
    onclose: ((ev: {
        code: number;
    }) => void) | null;
    onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;
export interface ClientOptions {
    /** The server's base URL, `https://host` (the WebSocket is `wss://host/api/v1/ws`). */
    url: string;
    tokens: TokenProvider;
    /** Where unacknowledged batches wait (default: in memory). */
    storage?: OutboxStorage;
    /** Most batches sent and not yet acked (default 2; the server's limit caps it). */
    maxInFlight?: number;
    /** Most samples per frame (default 1000; the server's limit caps it). */
    maxBatchSize?: number;
    backoff?: BackoffOptions;
    WebSocket?: WebSocketConstructor;
    fetch?: typeof fetch;
}
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'failed' | 'closed';
export interface ClientEvents {
    state: (state: ClientState) => void;
    /** An error not tied to a call (a stopped client's `AuthError`, an unexpected frame). */
    error: (error: ClarityError) => void;
    /** Every frame from the server, after the client handled it. */
    frame: (frame: ServerFrame) => void;
    /** A batch a previous run left in the storage was acked. */
    result: (result: BatchResult, record: OutboxRecord) => void;
}
export declare class ClarityClient {
    readonly rest: ClarityRest;
    private readonly tokens;
    private readonly wsUrl;
    private readonly WS;
    private readonly backoff;
    private readonly outbox;
    private readonly options;
    private readonly listeners;
    private readonly subs;
    private ws;
    private welcome;
    /** Whether the current connection got its `welcome`. */
    private isWelcomed;
    private seq;
    private stateNow;
    private stopped;
    /** Why it stopped: later calls reject with it. */
    private stoppedBy;
    private needRefresh;
    private closeError;
    private nextDelayMs;
    private pauseUntil;
    private lastFrameAt;
    private timers;
    private liveness;
    constructor(options: ClientOptions);
    get state(): ClientState;
    /** The user the session is for (after the first `welcome`). */
    get userId(): string | undefined;
    /** Batches waiting for their ack. */
    get pending(): number;
    on<K extends keyof ClientEvents>(event: K, fn: ClientEvents[K]): () => void;
    /**
     * Stores `samples` (each with a stable `id`) on the server; resolves once they are durable
     * there, with what it did (summed over the frames they needed), in call order.
     */
    send(samples: Sample[]): Promise<BatchResult>;
    /**
     * Stores a regular series (one kind, unit and source at `interval_ms`) in `series` frames:
     * about 4 bytes a value instead of ~120 a sample object. Longer than a frame allows, it is
     * split, each part starting where it falls (same UTC offset). Resolves once durable, with
     * the counts summed and `rejected[].index` the value's index in `series.values`. Values
     * without ids get the server's derived ids (protocol/README.md, "Derived ids"), so sending
     * the same series again is all `duplicates`.
     */
    sendSeries(series: SeriesBody): Promise<BatchResult>;
    /** Deletes samples by id; resolves once durable (`deleted` / `not_found` counts). */
    delete(ids: string[]): Promise<BatchResult>;
    /** Resolves when every batch (this run's and any a previous run left) is acked. */
    drain(): Promise<void>;
    /**
     * Follows `stream` of `userId` (default: the session's user): `handler` gets each event
     * once, in offset order, across reconnects. See `SubscribeOptions`.
     */
    subscribe(stream: Stream, userId: string | undefined, handler: (event: StreamEvent) => void, options?: SubscribeOptions): Subscription;
    /** Closes the session for good; waiting promises reject, their batches stay stored. */
    close(): void;
    private connect;
    private lost;
    private retry;
    private later;
    private stop;
    private fail;
    private setState;
    private emit;
    private sendFrame;
    private watch;
    private onFrame;
    private sub;
    private endSub;
    private onAck;
    private onError;
    private refreshInBand;
    private batchSize;
    private inflightLimit;
    private pump;
    private sum;
}
