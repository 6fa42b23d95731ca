/**
 * Subscriptions to a user's streams (`analyses`, `insights`, and the change feed `samples`),
 * kept across reconnects.
 *
 * Rules:
 * - Each subscription remembers the last `offset` its handler got and the stream's `epoch`;
 *   after a reconnect (or `lagged`) it subscribes again with `since`/`epoch`, so the server
 *   replays exactly what was missed. An event at or below that offset (a replay overlapping
 *   what was delivered) is dropped: the handler never sees an offset twice, and offsets only
 *   go up.
 * - `recover: false` (the missed events are gone) and `resync_required` (the change feed's
 *   position cannot be followed) call `onReload`: the app reloads from REST (for `samples`,
 *   it clears its copy; the replay from 0 that follows is the whole current set).
 * - A share revoked (`unsubscribed` `revoked`) or a refused subscribe (`forbidden`) ends the
 *   subscription and calls `onEnd` with the reason; it is not renewed.
 */
import type { SubscribeFrame, SubscribedFrame } from './generated/index.js';
import { ClarityError } from './errors.js';

export type Stream = SubscribeFrame['stream'];

/** A frame delivered to a subscription: analysis, insight, superseded, or change. */
export interface StreamEvent {
  type: string;
  stream: Stream;
  user_id: string;
  offset: number;
  [field: string]: unknown;
}

export interface ReloadInfo {
  stream: Stream;
  userId: string;
  /** Events after this offset follow live. */
  offset: number;
  /** `recover_false`: the server no longer has the missed events; `resync_required`: the
   * change feed restarts from 0 (clear the local copy: the replay is the whole set). */
  reason: 'recover_false' | 'resync_required';
}

export interface SubscribeOptions {
  /** Resume from this offset (the last one seen, e.g. stored by the app). Omitted: live
   * events only. `0`: whatever the server keeps, from the start. */
  since?: number;
  /** The epoch that `since` belongs to. */
  epoch?: string;
  onReload?: (info: ReloadInfo) => void;
  /** The subscription ended for good: `revoked` (share deleted), or a `ClarityError`. */
  onEnd?: (reason: 'revoked' | ClarityError) => void;
  /** Every `subscribed` answer (e.g. to show "live"). */
  onSubscribed?: (frame: SubscribedFrame) => void;
}

export class Subscription {
  /** Last offset delivered to the handler (or reported by the server on reload). */
  offset: number | undefined;
  epoch: string | undefined;
  /** `pending` (not yet answered on this connection), `live`, or `ended`. */
  state: 'pending' | 'live' | 'ended' = 'pending';

  constructor(
    readonly stream: Stream,
    /** `undefined` until the server names the session's own user. */
    public userId: string | undefined,
    readonly handler: (event: StreamEvent) => void,
    readonly options: SubscribeOptions,
    private readonly onUnsubscribe: (s: Subscription) => void,
  ) {
    this.offset = options.since;
    this.epoch = options.epoch;
  }

  /** The frame that (re)starts it. */
  frame(): SubscribeFrame {
    const f: SubscribeFrame = { type: 'subscribe', stream: this.stream };
    if (this.userId) f.user_id = this.userId;
    if (this.offset !== undefined) f.since = this.offset;
    if (this.epoch !== undefined && this.offset !== undefined) f.epoch = this.epoch;
    return f;
  }

  matches(stream: unknown, userId: unknown): boolean {
    return stream === this.stream && userId === this.userId;
  }

  subscribed(f: SubscribedFrame): void {
    this.state = 'live';
    this.epoch = f.epoch;
    if (this.offset === undefined) this.offset = f.offset;
    else if (!f.recover) {
      this.offset = f.offset;
      this.options.onReload?.({ stream: this.stream, userId: f.user_id, offset: f.offset, reason: 'recover_false' });
    }
    this.options.onSubscribed?.(f);
  }

  /** Delivers `event` unless its offset was delivered already. */
  deliver(event: StreamEvent): void {
    if (this.state === 'ended') return;
    if (this.offset !== undefined && event.offset <= this.offset) return;
    this.offset = event.offset;
    this.handler(event);
  }

  /** The change feed's position is unusable: start again from 0. */
  resync(): void {
    this.offset = 0;
    this.epoch = undefined;
    this.options.onReload?.({ stream: this.stream, userId: this.userId ?? '', offset: 0, reason: 'resync_required' });
  }

  end(reason: 'revoked' | ClarityError): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.options.onEnd?.(reason);
  }

  /** Stops it (sends `unsubscribe` when connected). */
  unsubscribe(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.onUnsubscribe(this);
  }
}
