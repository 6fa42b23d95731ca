export function emptyResult() {
    return { accepted: 0, duplicates: 0, updated: 0, deleted: 0, not_found: 0, rejected: [], rejected_omitted: 0 };
}
export function addResult(into, r, indexOffset = 0) {
    into.accepted += r.accepted;
    into.duplicates += r.duplicates;
    into.updated += r.updated;
    into.deleted += r.deleted;
    into.not_found += r.not_found;
    into.rejected_omitted += r.rejected_omitted;
    for (const x of r.rejected)
        into.rejected.push({ ...x, index: x.index + indexOffset });
}
export class Outbox {
    storage;
    onResult;
    onReady;
    entries = [];
    nextKey = 1;
    chain;
    bySeq = new Map();
    idle = [];
    constructor(storage, onResult, onReady) {
        this.storage = storage;
        this.onResult = onResult;
        this.onReady = onReady;
        this.chain = storage.load().then((records) => {
            for (const record of records) {
                this.entries.push({ record, seq: undefined, outcome: undefined });
                this.nextKey = Math.max(this.nextKey, record.key + 1);
            }
            onReady();
        });
    }
    /** Resolves once earlier records are loaded (rejects if the storage cannot be read). */
    loaded() {
        return this.chain;
    }
    /** Queues a batch: stored first, then sendable. */
    add(make) {
        return new Promise((resolve, reject) => {
            this.chain = this.chain.then(async () => {
                const record = make(this.nextKey++);
                await this.storage.put(record);
                this.entries.push({ record, seq: undefined, outcome: undefined, resolve, reject });
                this.onReady();
            }).catch((e) => {
                reject(e instanceof Error ? e : new Error(String(e)));
            });
        });
    }
    /** The batches waiting, sent or not. */
    get size() {
        return this.entries.length;
    }
    get inflight() {
        return this.bySeq.size;
    }
    /** The next batch to send, if any. */
    nextUnsent() {
        return this.entries.find((e) => e.seq === undefined && e.outcome === undefined);
    }
    markSent(entry, seq) {
        entry.seq = seq;
        this.bySeq.set(seq, entry);
    }
    /** The connection is gone: whatever was sent and not answered is unsent again. */
    connectionLost() {
        for (const e of this.bySeq.values())
            e.seq = undefined;
        this.bySeq.clear();
    }
    /** An ack: the batch is durable on the server. */
    async acked(ack) {
        const entry = this.take(ack.seq);
        if (!entry)
            return;
        await this.storage.remove(entry.record.key);
        entry.outcome = {
            result: {
                accepted: ack.accepted,
                duplicates: ack.duplicates,
                updated: ack.updated ?? 0,
                deleted: ack.deleted ?? 0,
                not_found: ack.not_found ?? 0,
                rejected: ack.rejected,
                rejected_omitted: ack.rejected_omitted ?? 0,
            },
        };
        this.settle();
    }
    /** Refused for now: sent again (first of the unsent) when the caller says. */
    retryLater(seq) {
        const entry = this.take(seq);
        if (!entry)
            return false;
        entry.seq = undefined;
        return true;
    }
    /** Refused for good (over the server's limits): dropped, its promise rejected. */
    async refused(seq, error) {
        const entry = this.take(seq);
        if (!entry)
            return;
        await this.storage.remove(entry.record.key);
        entry.outcome = { error };
        this.settle();
    }
    /** Rejects every waiting promise (the client stopped); the records stay stored. */
    failAll(error) {
        for (const e of this.entries) {
            e.reject?.(error);
            e.resolve = undefined;
            e.reject = undefined;
        }
    }
    /** Resolves when nothing is waiting. */
    drained() {
        if (!this.entries.length)
            return Promise.resolve();
        return new Promise((resolve) => this.idle.push(resolve));
    }
    take(seq) {
        const entry = this.bySeq.get(seq);
        if (!entry)
            return undefined;
        this.bySeq.delete(seq);
        // Answered: not sendable while its outcome is being stored (retryLater makes it so again).
        entry.seq = -1;
        return entry;
    }
    // Settles answered batches from the front, so promises resolve in call order.
    settle() {
        while (this.entries.length && this.entries[0].outcome) {
            const e = this.entries.shift();
            const outcome = e.outcome;
            if ('result' in outcome) {
                if (e.resolve)
                    e.resolve(outcome.result);
                else
                    this.onResult(outcome.result, e.record);
            }
            else
                e.reject?.(outcome.error);
        }
        if (!this.entries.length) {
            const idle = this.idle;
            this.idle = [];
            for (const f of idle)
                f();
        }
    }
}
