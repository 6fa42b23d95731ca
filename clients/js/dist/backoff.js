export class Backoff {
    attempt = 0;
    initialMs;
    maxMs;
    constructor(options = {}) {
        this.initialMs = options.initialMs ?? 500;
        this.maxMs = options.maxMs ?? 30_000;
    }
    /** The delay before the next attempt; each call doubles the base up to `maxMs`. */
    next() {
        const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
        this.attempt += 1;
        return base / 2 + Math.random() * (base / 2);
    }
    reset() {
        this.attempt = 0;
    }
}
