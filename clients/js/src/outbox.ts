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

export function emptyResult(): BatchResult {
  return { accepted: 0, duplicates: 0, updated: 0, deleted: 0, not_found: 0, rejected: [], rejected_omitted: 0 };
}

export function addResult(into: BatchResult, r: BatchResult, indexOffset = 0): void {
  into.accepted += r.accepted;
  into.duplicates += r.duplicates;
  into.updated += r.updated;
  into.deleted += r.deleted;
  into.not_found += r.not_found;
  into.rejected_omitted += r.rejected_omitted;
  for (const x of r.rejected) into.rejected.push({ ...x, index: x.index + indexOffset });
}

export interface Entry {
  record: OutboxRecord;
  /** Its `seq` in the current session while sent and not answered. */
  seq: number | undefined;
  outcome: { result: BatchResult } | { error: Error } | undefined;
  resolve?: (r: BatchResult) => void;
  reject?: (e: Error) => void;
}

export class Outbox {
  private readonly entries: Entry[] = [];
  private nextKey = 1;
  private chain: Promise<unknown>;
  private readonly bySeq = new Map<number, Entry>();
  private idle: Array<() => void> = [];

  constructor(
    private readonly storage: OutboxStorage,
    private readonly onResult: (r: BatchResult, record: OutboxRecord) => void,
    private readonly onReady: () => void,
  ) {
    this.chain = storage.load().then((records) => {
      for (const record of records) {
        this.entries.push({ record, seq: undefined, outcome: undefined });
        this.nextKey = Math.max(this.nextKey, record.key + 1);
      }
      onReady();
    });
  }

  /** Resolves once earlier records are loaded (rejects if the storage cannot be read). */
  loaded(): Promise<unknown> {
    return this.chain;
  }

  /** Queues a batch: stored first, then sendable. */
  add(make: (key: number) => OutboxRecord): Promise<BatchResult> {
    return new Promise<BatchResult>((resolve, reject) => {
      this.chain = this.chain.then(async () => {
        const record = make(this.nextKey++);
        await this.storage.put(record);
        this.entries.push({ record, seq: undefined, outcome: undefined, resolve, reject });
        this.onReady();
      }).catch((e: unknown) => {
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  /** The batches waiting, sent or not. */
  get size(): number {
    return this.entries.length;
  }

  get inflight(): number {
    return this.bySeq.size;
  }

  /** The next batch to send, if any. */
  nextUnsent(): Entry | undefined {
    return this.entries.find((e) => e.seq === undefined && e.outcome === undefined);
  }

  markSent(entry: Entry, seq: number): void {
    entry.seq = seq;
    this.bySeq.set(seq, entry);
  }

  /** The connection is gone: whatever was sent and not answered is unsent again. */
  connectionLost(): void {
    for (const e of this.bySeq.values()) e.seq = undefined;
    this.bySeq.clear();
  }

  /** An ack: the batch is durable on the server. */
  async acked(ack: AckFrame): Promise<void> {
    const entry = this.take(ack.seq);
    if (!entry) return;
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
  retryLater(seq: number): boolean {
    const entry = this.take(seq);
    if (!entry) return false;
    entry.seq = undefined;
    return true;
  }

  /** Refused for good (over the server's limits): dropped, its promise rejected. */
  async refused(seq: number, error: ClarityError): Promise<void> {
    const entry = this.take(seq);
    if (!entry) return;
    await this.storage.remove(entry.record.key);
    entry.outcome = { error };
    this.settle();
  }

  /** Rejects every waiting promise (the client stopped); the records stay stored. */
  failAll(error: Error): void {
    for (const e of this.entries) {
      e.reject?.(error);
      e.resolve = undefined;
      e.reject = undefined;
    }
  }

  /** Resolves when nothing is waiting. */
  drained(): Promise<void> {
    if (!this.entries.length) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private take(seq: number): Entry | undefined {
    const entry = this.bySeq.get(seq);
    if (!entry) return undefined;
    this.bySeq.delete(seq);
    // Answered: not sendable while its outcome is being stored (retryLater makes it so again).
    entry.seq = -1;
    return entry;
  }

  // Settles answered batches from the front, so promises resolve in call order.
  private settle(): void {
    while (this.entries.length && this.entries[0]!.outcome) {
      const e = this.entries.shift()!;
      const outcome = e.outcome!;
      if ('result' in outcome) {
        if (e.resolve) e.resolve(outcome.result);
        else this.onResult(outcome.result, e.record);
      } else e.reject?.(outcome.error);
    }
    if (!this.entries.length) {
      const idle = this.idle;
      this.idle = [];
      for (const f of idle) f();
    }
  }
}

export type { Sample };
