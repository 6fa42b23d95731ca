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
export declare class Subscription {
    readonly stream: Stream;
    /** `undefined` until the server names the session's own user. */
    userId: string | undefined;
    readonly handler: (event: StreamEvent) => void;
    readonly options: SubscribeOptions;
    private readonly onUnsubscribe;
    /** Last offset delivered to the handler (or reported by the server on reload). */
    offset: number | undefined;
    epoch: string | undefined;
    /** `pending` (not yet answered on this connection), `live`, or `ended`. */
    state: 'pending' | 'live' | 'ended';
    constructor(stream: Stream, 
    /** `undefined` until the server names the session's own user. */
    userId: string | undefined, handler: (event: StreamEvent) => void, options: SubscribeOptions, onUnsubscribe: (s: Subscription) => void);
    /** The frame that (re)starts it. */
    frame(): SubscribeFrame;
    matches(stream: unknown, userId: unknown): boolean;
    subscribed(f: SubscribedFrame): void;
    /** Delivers `event` unless its offset was delivered already. */
    deliver(event: StreamEvent): void;
    /** The change feed's position is unusable: start again from 0. */
    resync(): void;
    end(reason: 'revoked' | ClarityError): void;
    /** Stops it (sends `unsubscribe` when connected). */
    unsubscribe(): void;
}
