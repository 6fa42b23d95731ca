/** Keeps the outbox in memory: it survives reconnects, not an app restart. */
export class MemoryStorage {
    records = new Map();
    async load() {
        return [...this.records.values()].sort((a, b) => a.key - b.key).map((r) => structuredClone(r));
    }
    async put(record) {
        this.records.set(record.key, structuredClone(record));
    }
    async remove(key) {
        this.records.delete(key);
    }
}
function done(req) {
    return new Promise((resolve, reject) => {
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
    });
}
function committed(tx) {
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
export class IndexedDBStorage {
    name;
    idb;
    db = null;
    /** `name`: the database, one per user (e.g. `clarity-outbox-<user id>`). */
    constructor(name = 'clarity-outbox', idb = globalThis.indexedDB) {
        this.name = name;
        this.idb = idb;
        if (!idb)
            throw new Error('IndexedDBStorage: no indexedDB in this environment');
    }
    open() {
        if (!this.db) {
            const req = this.idb.open(this.name, 1);
            req.onupgradeneeded = () => {
                req.result.createObjectStore('outbox', { keyPath: 'key' });
            };
            this.db = done(req);
        }
        return this.db;
    }
    async tx(mode) {
        const db = await this.open();
        return db.transaction('outbox', mode, { durability: 'strict' });
    }
    async load() {
        const tx = await this.tx('readonly');
        // getAll returns records in key order.
        return done(tx.objectStore('outbox').getAll());
    }
    async put(record) {
        const tx = await this.tx('readwrite');
        tx.objectStore('outbox').put(record);
        await committed(tx);
    }
    async remove(key) {
        const tx = await this.tx('readwrite');
        tx.objectStore('outbox').delete(key);
        await committed(tx);
    }
    /** Closes the database (tests, or before deleting it). */
    async close() {
        if (this.db)
            (await this.db).close();
        this.db = null;
    }
}
