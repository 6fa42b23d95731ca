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
import type { AckFrame, DeleteFrame, Sample, SamplesFrame, SeriesFrame, ServerFrame, WelcomeFrame } from './generated/index.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { AuthError, ClarityError, isAuthFailure } from './errors.js';
import { addResult, emptyResult, Outbox, type BatchResult } from './outbox.js';
import { ClarityRest } from './rest.js';
import { MemoryStorage, type OutboxRecord, type OutboxStorage, type SeriesBody } from './storage.js';
import { Subscription, type Stream, type StreamEvent, type SubscribeOptions } from './subscriptions.js';
import { baseUrl, type TokenProvider } from './tokens.js';

/** The part of the WebSocket API the client uses (browsers', React Native's, node ≥ 22's). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
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

const OPEN = 1;
const HANDSHAKE_TIMEOUT_MS = 15_000;
/** Refused for now: the frame was not processed; resend it after retry_after_ms. */
const RETRY_CODES = new Set(['rate_limited', 'store_unavailable', 'internal']);
const CLOSE_LOGGED_OUT = 4011;
const CLOSE_TOKEN = new Set([4001, 4003]);

export class ClarityClient {
  readonly rest: ClarityRest;
  private readonly tokens: TokenProvider;
  private readonly wsUrl: string;
  private readonly WS: WebSocketConstructor;
  private readonly backoff: Backoff;
  private readonly outbox: Outbox;
  private readonly options: ClientOptions;
  private readonly listeners = new Map<keyof ClientEvents, Set<(...args: never[]) => void>>();
  private readonly subs = new Set<Subscription>();
  private ws: WebSocketLike | null = null;
  private welcome: WelcomeFrame | null = null;
  /** Whether the current connection got its `welcome`. */
  private isWelcomed = false;
  private seq = 1;
  private stateNow: ClientState = 'connecting';
  private stopped = false;
  /** Why it stopped: later calls reject with it. */
  private stoppedBy: ClarityError | undefined;
  private needRefresh = false;
  private closeError: string | undefined;
  private nextDelayMs: number | undefined;
  private pauseUntil = 0;
  private lastFrameAt = 0;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private liveness: ReturnType<typeof setInterval> | undefined;

  constructor(options: ClientOptions) {
    this.options = options;
    this.tokens = options.tokens;
    const base = baseUrl(options.url);
    this.wsUrl = `${base.replace(/^http/, 'ws')}/api/v1/ws`;
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error('ClarityClient: no WebSocket in this environment (node 20: --experimental-websocket; or pass options.WebSocket)');
    this.WS = WS;
    this.backoff = new Backoff(options.backoff);
    this.rest = new ClarityRest({ url: base, tokens: options.tokens, fetch: options.fetch });
    this.outbox = new Outbox(
      options.storage ?? new MemoryStorage(),
      (r, record) => this.emit('result', r, record),
      () => this.pump(),
    );
    this.outbox.loaded().then(
      () => this.connect(),
      (e: unknown) => this.fail(new ClarityError('storage_failed', `the outbox storage could not be read: ${String(e)}`)),
    );
  }

  get state(): ClientState {
    return this.stateNow;
  }

  /** The user the session is for (after the first `welcome`). */
  get userId(): string | undefined {
    return this.welcome?.user_id;
  }

  /** Batches waiting for their ack. */
  get pending(): number {
    return this.outbox.size;
  }

  on<K extends keyof ClientEvents>(event: K, fn: ClientEvents[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as (...args: never[]) => void);
    return () => set.delete(fn as (...args: never[]) => void);
  }

  /**
   * Stores `samples` (each with a stable `id`) on the server; resolves once they are durable
   * there, with what it did (summed over the frames they needed), in call order.
   */
  async send(samples: Sample[]): Promise<BatchResult> {
    if (this.stoppedBy) throw this.stoppedBy;
    const size = this.batchSize();
    const parts: Promise<BatchResult>[] = [];
    for (let i = 0; i < samples.length; i += size) {
      const chunk = samples.slice(i, i + size);
      parts.push(this.outbox.add((key) => ({ key, op: 'samples', samples: chunk })));
    }
    return this.sum(parts, size);
  }

  /**
   * Stores a regular series (one kind, unit and source at `interval_ms`) in `series` frames:
   * about 4 bytes a value instead of ~120 a sample object. Longer than a frame allows, it is
   * split, each part starting where it falls (same UTC offset). Resolves once durable, with
   * the counts summed and `rejected[].index` the value's index in `series.values`. Values
   * without ids get the server's derived ids (protocol/README.md, "Derived ids"), so sending
   * the same series again is all `duplicates`.
   */
  async sendSeries(series: SeriesBody): Promise<BatchResult> {
    if (this.stoppedBy) throw this.stoppedBy;
    const size = this.batchSize();
    const offset = utcOffsetMs(series.start);
    const startMs = Date.parse(series.start);
    if (offset === undefined || Number.isNaN(startMs)) {
      throw new ClarityError('invalid_frame', `series: start ${JSON.stringify(series.start)} is no RFC 3339 date-time with an offset`);
    }
    const parts: Promise<BatchResult>[] = [];
    for (let i = 0; i < series.values.length; i += size) {
      const part: SeriesBody = {
        ...series,
        start: i === 0 ? series.start : atOffset(startMs + i * series.interval_ms, offset),
        values: series.values.slice(i, i + size) as SeriesBody['values'],
      };
      if (series.ids) part.ids = series.ids.slice(i, i + size);
      if (series.versions) part.versions = series.versions.slice(i, i + size);
      parts.push(this.outbox.add((key) => ({ key, op: 'series', series: part })));
    }
    return this.sum(parts, size);
  }

  /** Deletes samples by id; resolves once durable (`deleted` / `not_found` counts). */
  async delete(ids: string[]): Promise<BatchResult> {
    if (this.stoppedBy) throw this.stoppedBy;
    const parts: Promise<BatchResult>[] = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const chunk = ids.slice(i, i + 1000);
      parts.push(this.outbox.add((key) => ({ key, op: 'delete', ids: chunk })));
    }
    return this.sum(parts, 1000);
  }

  /** Resolves when every batch (this run's and any a previous run left) is acked. */
  drain(): Promise<void> {
    return this.outbox.loaded().then(() => this.outbox.drained());
  }

  /**
   * Follows `stream` of `userId` (default: the session's user): `handler` gets each event
   * once, in offset order, across reconnects. See `SubscribeOptions`.
   */
  subscribe(stream: Stream, userId: string | undefined, handler: (event: StreamEvent) => void, options: SubscribeOptions = {}): Subscription {
    const sub = new Subscription(stream, userId ?? this.welcome?.user_id, handler, options, (s) => {
      this.subs.delete(s);
      if (this.welcome && s.userId) this.sendFrame({ type: 'unsubscribe', stream: s.stream, user_id: s.userId });
    });
    for (const old of this.subs) {
      // Subscribing again replaces it on the server; here too.
      if (old.stream === sub.stream && old.userId === sub.userId) this.subs.delete(old);
    }
    this.subs.add(sub);
    if (this.welcome) this.sendFrame(sub.frame());
    return sub;
  }

  /** Closes the session for good; waiting promises reject, their batches stay stored. */
  close(): void {
    if (this.stopped) return;
    this.stop('closed');
    this.stoppedBy = new ClarityError('closed', 'the client was closed; unacknowledged batches stay in the outbox storage');
    this.outbox.failAll(this.stoppedBy);
  }

  // ---- connection ------------------------------------------------------------------------

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let token: string;
    try {
      token = this.needRefresh ? await this.tokens.refresh() : await this.tokens.get();
      this.needRefresh = false;
    } catch (e) {
      if (isAuthFailure(e)) return this.fail(toAuthError(e));
      return this.retry();
    }
    if (this.stopped) return;
    const ws = new this.WS(`${this.wsUrl}?access_token=${encodeURIComponent(token)}`);
    this.ws = ws;
    this.closeError = undefined;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(ev.data)) as ServerFrame;
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.lost(ev.code);
    };
    ws.onerror = () => {
      // Browsers follow an error with a close; node's WebSocket (undici) does not when the
      // handshake fails, so the error is the loss.
      if (this.ws === ws) this.lost(1006);
    };
    // A handshake that never completes (a proxy holding the connection) is a loss too.
    this.later(HANDSHAKE_TIMEOUT_MS, () => {
      if (this.ws === ws && !this.isWelcomed) this.lost(1006);
    });
  }

  private lost(code: number): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === OPEN) ws.close();
    }
    const welcomed = this.isWelcomed;
    this.isWelcomed = false;
    clearInterval(this.liveness);
    this.outbox.connectionLost();
    for (const s of this.subs) if (s.state === 'live') s.state = 'pending';
    if (this.stopped) return;
    if (code === CLOSE_LOGGED_OUT) {
      return this.fail(new AuthError(this.closeError ?? 'logged_out', 'this login was ended (logout, or the account was erased): sign in again'));
    }
    if (CLOSE_TOKEN.has(code)) this.needRefresh = true;
    this.setState('reconnecting');
    if (!welcomed) {
      // Refused before `welcome`: maybe the upgrade's 401, which a WebSocket cannot read.
      // REST says (it refreshes once; a second 401 is an AuthError).
      this.rest.profile().then(
        () => this.retry(),
        (e: unknown) => (isAuthFailure(e) ? this.fail(toAuthError(e)) : this.retry()),
      );
      return;
    }
    this.retry();
  }

  private retry(): void {
    if (this.stopped) return;
    this.setState('reconnecting');
    const delay = this.nextDelayMs ?? this.backoff.next();
    this.nextDelayMs = undefined;
    this.later(delay, () => this.connect());
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }

  private stop(state: ClientState): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    clearInterval(this.liveness);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(1000);
    }
    this.setState(state);
  }

  private fail(error: ClarityError): void {
    if (this.stopped) return;
    this.stop('failed');
    this.stoppedBy = error;
    this.outbox.failAll(error);
    for (const s of this.subs) s.end(error);
    this.subs.clear();
    this.emit('error', error);
  }

  private setState(state: ClientState): void {
    if (state === this.stateNow) return;
    this.stateNow = state;
    this.emit('state', state);
  }

  private emit<K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        (fn as unknown as (...a: Parameters<ClientEvents[K]>) => void)(...args);
      } catch (e) {
        // A listener's bug must not break the session.
        console.error('ClarityClient listener failed:', e);
      }
    }
  }

  private sendFrame(frame: object): void {
    if (this.ws && this.ws.readyState === OPEN) this.ws.send(JSON.stringify(frame));
  }

  // Seconds without any frame: ask with a ping; two intervals: the connection is dead.
  private watch(intervalMs: number): void {
    clearInterval(this.liveness);
    this.lastFrameAt = Date.now();
    this.liveness = setInterval(() => {
      const quiet = Date.now() - this.lastFrameAt;
      if (quiet > 2 * intervalMs) this.lost(1006);
      else if (quiet > intervalMs / 2) this.sendFrame({ type: 'ping' });
    }, intervalMs / 2);
  }

  // ---- frames ----------------------------------------------------------------------------

  private onFrame(f: ServerFrame): void {
    switch (f.type) {
      case 'welcome':
        this.welcome = f;
        this.isWelcomed = true;
        this.seq = 1;
        this.backoff.reset();
        this.watch(f.heartbeat_interval_ms || 30_000);
        this.setState('open');
        for (const s of this.subs) {
          s.userId ??= f.user_id;
          if (s.state !== 'ended') this.sendFrame(s.frame());
        }
        this.pump();
        break;
      case 'ack':
        this.onAck(f);
        break;
      case 'error':
        this.onError(f);
        break;
      case 'token_expiring':
        this.refreshInBand();
        break;
      case 'going_away':
        this.nextDelayMs = f.reconnect_after_ms;
        break;
      case 'subscribed':
        this.sub(f.stream, f.user_id)?.subscribed(f);
        break;
      case 'lagged': {
        const s = this.sub(f.stream, f.user_id);
        if (s) this.sendFrame(s.frame());
        break;
      }
      case 'unsubscribed':
        if (f.reason === 'revoked') this.endSub(f.stream, f.user_id, 'revoked');
        break;
      default: {
        const ev = f as unknown as StreamEvent;
        if (typeof ev.stream === 'string' && typeof ev.offset === 'number') this.sub(ev.stream, ev.user_id)?.deliver(ev);
      }
    }
    this.emit('frame', f);
  }

  private sub(stream: unknown, userId: unknown): Subscription | undefined {
    for (const s of this.subs) if (s.matches(stream, userId)) return s;
    return undefined;
  }

  private endSub(stream: unknown, userId: unknown, reason: 'revoked' | ClarityError): void {
    const s = this.sub(stream, userId);
    if (!s) return;
    this.subs.delete(s);
    s.end(reason);
  }

  private onAck(f: AckFrame): void {
    this.outbox.acked(f).then(
      () => this.pump(),
      (e: unknown) => this.emit('error', new ClarityError('storage_failed', `the outbox storage failed: ${String(e)}`)),
    );
  }

  private onError(f: Extract<ServerFrame, { type: 'error' }>): void {
    const retryMs = f.retry_after_ms ?? 1000;
    if (f.seq !== undefined && this.outbox.inflight) {
      if (RETRY_CODES.has(f.code)) {
        if (this.outbox.retryLater(f.seq)) {
          this.pauseUntil = Math.max(this.pauseUntil, Date.now() + retryMs);
          this.pump();
          return;
        }
      } else {
        void this.outbox.refused(f.seq, new ClarityError(f.code, f.message)).then(() => this.pump());
        return;
      }
    }
    if (f.stream) {
      const userId = f.user_id ?? this.welcome?.user_id;
      const s = this.sub(f.stream, userId);
      if (s) {
        if (f.code === 'store_unavailable') this.later(retryMs, () => this.sendFrame(s.frame()));
        else if ((f.code as string) === 'resync_required') {
          s.resync();
          this.sendFrame(s.frame());
        } else this.endSub(f.stream, userId, new ClarityError(f.code, f.message));
        return;
      }
    }
    switch (f.code) {
      case 'auth_unavailable':
        this.later(retryMs, () => this.refreshInBand());
        return;
      case 'token_expired':
      case 'auth_invalid':
      case 'logged_out':
      case 'account_erased':
        // The close that follows says what to do; its error names why.
        this.closeError = f.code;
        return;
      default:
        this.emit('error', new ClarityError(f.code, f.message, f.retry_after_ms));
    }
  }

  private refreshInBand(): void {
    this.tokens.refresh().then(
      (token) => this.sendFrame({ type: 'refresh', access_token: token }),
      (e: unknown) => {
        if (isAuthFailure(e)) this.fail(toAuthError(e));
        // Otherwise the server closes with 4001 at expiry and the reconnect refreshes again.
      },
    );
  }

  // ---- sending ---------------------------------------------------------------------------

  private batchSize(): number {
    const server = this.welcome?.limits.max_samples_per_frame ?? Infinity;
    return Math.max(1, Math.min(this.options.maxBatchSize ?? 1000, server));
  }

  private inflightLimit(): number {
    const server = this.welcome?.limits.max_inflight_batches ?? 1;
    return Math.max(1, Math.min(this.options.maxInFlight ?? 2, server));
  }

  private pump(): void {
    const ws = this.ws;
    if (!ws || !this.isWelcomed || ws.readyState !== OPEN) return;
    const wait = this.pauseUntil - Date.now();
    if (wait > 0) {
      this.later(wait, () => this.pump());
      return;
    }
    while (this.outbox.inflight < this.inflightLimit()) {
      const entry = this.outbox.nextUnsent();
      if (!entry) break;
      const seq = this.seq++;
      this.outbox.markSent(entry, seq);
      const r = entry.record;
      const frame: SamplesFrame | SeriesFrame | DeleteFrame =
        r.op === 'samples'
          ? { type: 'samples', seq, samples: r.samples }
          : r.op === 'series'
            ? { type: 'series', seq, ...r.series }
            : { type: 'delete', seq, ids: r.ids as DeleteFrame['ids'] };
      ws.send(JSON.stringify(frame));
    }
  }

  private async sum(parts: Promise<BatchResult>[], size: number): Promise<BatchResult> {
    const results = await Promise.all(parts);
    const total = emptyResult();
    results.forEach((r, i) => addResult(total, r, i * size));
    return total;
  }
}

/** The UTC offset of an RFC 3339 date-time (`Z` or `±hh:mm`), in ms; undefined without one. */
function utcOffsetMs(time: string): number | undefined {
  if (/z$/i.test(time)) return 0;
  const m = /([+-])(\d{2}):(\d{2})$/.exec(time);
  if (!m) return undefined;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000;
}

/** `utcMs` written as RFC 3339 in the UTC offset `offsetMs` (milliseconds kept). */
function atOffset(utcMs: number, offsetMs: number): string {
  if (offsetMs === 0) return new Date(utcMs).toISOString();
  const local = new Date(utcMs + offsetMs).toISOString().slice(0, -1);
  const abs = Math.abs(offsetMs) / 60_000;
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}${offsetMs < 0 ? '-' : '+'}${hh}:${mm}`;
}

function toAuthError(e: unknown): AuthError {
  if (e instanceof AuthError) return e;
  const c = e as { code?: string; message?: string; status?: number };
  return new AuthError(c.code ?? 'unauthorized', c.message ?? String(e), c.status);
}
