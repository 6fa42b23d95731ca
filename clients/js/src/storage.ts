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

export type OutboxRecord =
  | { key: number; op: 'samples'; samples: Sample[] }
  | { key: number; op: 'series'; series: SeriesBody }
  | { key: number; op: 'delete'; ids: string[] };

export interface OutboxStorage {
  /** Every record, in ascending `key` order. */
  load(): Promise<OutboxRecord[]>;
  put(record: OutboxRecord): Promise<void>;
  remove(key: number): Promise<void>;
}

/** Keeps the outbox in memory: it survives reconnects, not an app restart. */
export class MemoryStorage implements OutboxStorage {
  private readonly records = new Map<number, OutboxRecord>();

  async load(): Promise<OutboxRecord[]> {
    return [...this.records.values()].sort((a, b) => a.key - b.key).map((r) => structuredClone(r));
  }

  async put(record: OutboxRecord): Promise<void> {
    this.records.set(record.key, structuredClone(record));
  }

  async remove(key: number): Promise<void> {
    this.records.delete(key);
  }
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/**
 * The outbox in an IndexedDB database (one object store, `outbox`, keyed by `key`). Writes
 * use `durability: "strict"` where the browser supports it, so a put is on disk when it
 * resolves.
 */
export class IndexedDBStorage implements OutboxStorage {
  private db: Promise<IDBDatabase> | null = null;

  /** `name`: the database, one per user (e.g. `clarity-outbox-<user id>`). */
  constructor(
    private readonly name: string = 'clarity-outbox',
    private readonly idb: IDBFactory = globalThis.indexedDB,
  ) {
    if (!idb) throw new Error('IndexedDBStorage: no indexedDB in this environment');
  }

  private open(): Promise<IDBDatabase> {
    if (!this.db) {
      const req = this.idb.open(this.name, 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore('outbox', { keyPath: 'key' });
      };
      this.db = done(req);
    }
    return this.db;
  }

  private async tx(mode: IDBTransactionMode): Promise<IDBTransaction> {
    const db = await this.open();
    return db.transaction('outbox', mode, { durability: 'strict' });
  }

  async load(): Promise<OutboxRecord[]> {
    const tx = await this.tx('readonly');
    // getAll returns records in key order.
    return done(tx.objectStore('outbox').getAll() as IDBRequest<OutboxRecord[]>);
  }

  async put(record: OutboxRecord): Promise<void> {
    const tx = await this.tx('readwrite');
    tx.objectStore('outbox').put(record);
    await committed(tx);
  }

  async remove(key: number): Promise<void> {
    const tx = await this.tx('readwrite');
    tx.objectStore('outbox').delete(key);
    await committed(tx);
  }

  /** Closes the database (tests, or before deleting it). */
  async close(): Promise<void> {
    if (this.db) (await this.db).close();
    this.db = null;
  }
}
