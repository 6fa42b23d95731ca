export class Subscription {
    stream;
    userId;
    handler;
    options;
    onUnsubscribe;
    /** Last offset delivered to the handler (or reported by the server on reload). */
    offset;
    epoch;
    /** `pending` (not yet answered on this connection), `live`, or `ended`. */
    state = 'pending';
    constructor(stream, 
    /** `undefined` until the server names the session's own user. */
    userId, handler, options, onUnsubscribe) {
        this.stream = stream;
        this.userId = userId;
        this.handler = handler;
        this.options = options;
        this.onUnsubscribe = onUnsubscribe;
        this.offset = options.since;
        this.epoch = options.epoch;
    }
    /** The frame that (re)starts it. */
    frame() {
        const f = { type: 'subscribe', stream: this.stream };
        if (this.userId)
            f.user_id = this.userId;
        if (this.offset !== undefined)
            f.since = this.offset;
        if (this.epoch !== undefined && this.offset !== undefined)
            f.epoch = this.epoch;
        return f;
    }
    matches(stream, userId) {
        return stream === this.stream && userId === this.userId;
    }
    subscribed(f) {
        this.state = 'live';
        this.epoch = f.epoch;
        if (this.offset === undefined)
            this.offset = f.offset;
        else if (!f.recover) {
            this.offset = f.offset;
            this.options.onReload?.({ stream: this.stream, userId: f.user_id, offset: f.offset, reason: 'recover_false' });
        }
        this.options.onSubscribed?.(f);
    }
    /** Delivers `event` unless its offset was delivered already. */
    deliver(event) {
        if (this.state === 'ended')
            return;
        if (this.offset !== undefined && event.offset <= this.offset)
            return;
        this.offset = event.offset;
        this.handler(event);
    }
    /** The change feed's position is unusable: start again from 0. */
    resync() {
        this.offset = 0;
        this.epoch = undefined;
        this.options.onReload?.({ stream: this.stream, userId: this.userId ?? '', offset: 0, reason: 'resync_required' });
    }
    end(reason) {
        if (this.state === 'ended')
            return;
        this.state = 'ended';
        this.options.onEnd?.(reason);
    }
    /** Stops it (sends `unsubscribe` when connected). */
    unsubscribe() {
        if (this.state === 'ended')
            return;
        this.state = 'ended';
        this.onUnsubscribe(this);
    }
}
