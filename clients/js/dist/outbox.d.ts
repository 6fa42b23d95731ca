/**
 * The outbox: batches (`samples` and `delete` frames) from the moment `send()`/`delete()` is
 * called until the server's ack for them, kept in an `OutboxStorage`.
 *
 * Rules:
 * - A batch is sent only once its record is durable, and leaves the storage only when its ack
 *   arrives: killed or disconnected at any point, the app resends it (the server counts a
 *   resent sample as a duplicate, a resent delete as not_found: never twice).
 * - Batches are sent in `key` order (the order of the calls, after those a previous run left),
 *   with the same ids every time; a batch refused for now (`rate_limited`,
 *   `store_unavailable`, `internal`) goes back to the front of the unsent ones.
 * - Promises resolve in call order: a batch acked before an earlier one (which was refused
 *   for now and resent) waits for it.
 * - Results of batches a previous run left (nobody awaits them) go to `onResult`.
 */
import type { AckFrame, Sample } from './generated/index.js';
import { ClarityError } from './errors.js';
import type { OutboxRecord, OutboxStorage } from './storage.js';
/** What the server did with a batch (summed over the frames of one call). */
export interface BatchResult {
    /** Samples newly stored. */
    accepted: number;
    /** Samples already stored with the same or a higher version. */
    duplicates: number;
    /** Samples that replaced the stored one (higher version). */
    updated: number;
    /** Ids deleted, and ids that were not stored. */
    deleted: number;
    not_found: number;
    /** Invalid samples; `index` is the position in the array given to `send()`. */
    rejected: AckFrame['rejected'];
    rejected_omitted: number;
}
export declare function emptyResult(): BatchResult;
export declare function addResult(into: BatchResult, r: BatchResult, indexOffset?: number): void;
export interface Entry {
    record: OutboxRecord;
    /** Its `seq` in the current session while sent and not answered. */
    seq: number | undefined;
    outcome: {
        result: BatchResult;
    } | {
        error: Error;
    } | undefined;
    resolve?: (r: BatchResult) => void;
    reject?: (e: Error) => void;
}
export declare class Outbox {
    private readonly storage;
    private readonly onResult;
    private readonly onReady;
    private readonly entries;
    private nextKey;
    private chain;
    private readonly bySeq;
    private idle;
    constructor(storage: OutboxStorage, onResult: (r: BatchResult, record: OutboxRecord) => void, onReady: () => void);
    /** Resolves once earlier records are loaded (rejects if the storage cannot be read). */
    loaded(): Promise<unknown>;
    /** Queues a batch: stored first, then sendable. */
    add(make: (key: number) => OutboxRecord): Promise<BatchResult>;
    /** The batches waiting, sent or not. */
    get size(): number;
    get inflight(): number;
    /** The next batch to send, if any. */
    nextUnsent(): Entry | undefined;
    markSent(entry: Entry, seq: number): void;
    /** The connection is gone: whatever was sent and not answered is unsent again. */
    connectionLost(): void;
    /** An ack: the batch is durable on the server. */
    acked(ack: AckFrame): Promise<void>;
    /** Refused for now: sent again (first of the unsent) when the caller says. */
    retryLater(seq: number): boolean;
    /** Refused for good (over the server's limits): dropped, its promise rejected. */
    refused(seq: number, error: ClarityError): Promise<void>;
    /** Rejects every waiting promise (the client stopped); the records stay stored. */
    failAll(error: Error): void;
    /** Resolves when nothing is waiting. */
    drained(): Promise<void>;
    private take;
    private settle;
}
export type { Sample };
