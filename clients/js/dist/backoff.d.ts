/**
 * Reconnect delays: exponential with "equal jitter" (half the delay fixed, half random), so
 * that many clients cut off by one restart do not come back in step, and a client never
 * hammers a server that is down.
 */
export interface BackoffOptions {
    /** First delay, ms (default 500). */
    initialMs?: number;
    /** Largest delay, ms (default 30000). */
    maxMs?: number;
}
export declare class Backoff {
    private attempt;
    private readonly initialMs;
    private readonly maxMs;
    constructor(options?: BackoffOptions);
    /** The delay before the next attempt; each call doubles the base up to `maxMs`. */
    next(): number;
    reset(): void;
}
