/**
 * The durable outbox's storage: where batches wait until the server's ack says they are
 * durable there. A small interface so each platform brings its own: `MemoryStorage` (tests,
 * or data the app can re-read from its source), `IndexedDBStorage` (browsers), and on React
 * Native an AsyncStorage or SQLite adapter (the README shows one).
 *
 * Rules:
 * - `put` resolves only once the record is durable: the client sends a batch after that,
 *   and resolves `send()` only after `remove` of its record, so an app killed at any moment
 *   resends (never loses) what the server had not acknowledged.
 * - Records come back from `load` in `key` order: that is the order they are sent in.
 * - One storage per user: a batch belongs to whoever's token sends it.
 */
import type { Sample, SeriesFrame } from './generated/index.js';
/** A `series` frame without its `type` and `seq` (chosen per session when it is sent). */
export type SeriesBody = Omit<SeriesFrame, 'type' | 'seq'>;
export type OutboxRecord = {
    key: number;
    op: 'samples';
    samples: Sample[];
} | {
    key: number;
    op: 'series';
    series: SeriesBody;
} | {
    key: number;
    op: 'delete';
    ids: string[];
};
export interface OutboxStorage {
    /** Every record, in ascending `key` order. */
    load(): Promise<OutboxRecord[]>;
    put(record: OutboxRecord): Promise<void>;
    remove(key: number): Promise<void>;
}
/** Keeps the outbox in memory: it survives reconnects, not an app restart. */
export declare class MemoryStorage implements OutboxStorage {
    private readonly records;
    load(): Promise<OutboxRecord[]>;
    put(record: OutboxRecord): Promise<void>;
    remove(key: number): Promise<void>;
}
/**
 * The outbox in an IndexedDB database (one object store, `outbox`, keyed by `key`). Writes
 * use `durability: "strict"` where the browser supports it, so a put is on disk when it
 * resolves.
 */
export declare class IndexedDBStorage implements OutboxStorage {
    private readonly name;
    private readonly idb;
    private db;
    /** `name`: the database, one per user (e.g. `clarity-outbox-<user id>`). */
    constructor(name?: string, idb?: IDBFactory);
    private open;
    private tx;
    load(): Promise<OutboxRecord[]>;
    put(record: OutboxRecord): Promise<void>;
    remove(key: number): Promise<void>;
    /** Closes the database (tests, or before deleting it). */
    close(): Promise<void>;
}
