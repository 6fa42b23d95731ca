/**
 * Access tokens. The client asks a `TokenProvider` for the current token (`get`) and for a new
 * one (`refresh`) when the server warns that it expires (`token_expiring`) or refuses it; the
 * provider is the app's: local login (`SessionTokens`), Cognito, or anything that yields JWTs
 * the server accepts.
 *
 * Rules for `SessionTokens` (the server's own `/api/v1/auth` endpoints):
 * - One refresh at a time: a refresh token is single use, and replaying a spent one makes the
 *   server end the whole login. Concurrent `refresh()` calls share one request.
 * - A refused refresh token is an `AuthError`; a network failure is rethrown as is, so the
 *   client retries it later with backoff.
 * - `onChange` sees every new pair, so the app can keep it (sessionStorage, Keychain); the SDK
 *   never logs tokens.
 */
import { ApiError } from './errors.js';
export interface TokenProvider {
    /** The access token to use now. */
    get(): string | Promise<string>;
    /** A new access token for the same user; rejects with `AuthError` when that is impossible. */
    refresh(): Promise<string>;
}
/** The answer of `POST /api/v1/auth/login` and `/refresh`. */
export interface TokenPair {
    access_token: string;
    refresh_token: string;
    token_type?: string;
    /** Seconds. */
    expires_in: number;
}
/** A stored pair: `expires_at` in epoch milliseconds. */
export interface StoredTokens {
    access_token: string;
    refresh_token: string;
    expires_at: number;
}
export interface SessionTokensOptions {
    /** The server's base URL, e.g. `https://clarity.example.com`. */
    url: string;
    tokens: TokenPair | StoredTokens;
    /** Called with every new pair (and `null` after `logout`). */
    onChange?: (tokens: StoredTokens | null) => void;
    /** Refresh ahead of expiry by this much (default 30 s). */
    marginMs?: number;
    fetch?: typeof fetch;
}
export declare function baseUrl(url: string): string;
/** Tokens of the server's local accounts (`POST /api/v1/auth/login`). */
export declare class SessionTokens implements TokenProvider {
    private tokens;
    private inflight;
    private readonly url;
    private readonly onChange;
    private readonly marginMs;
    private readonly fetch;
    constructor(options: SessionTokensOptions);
    /** Logs in with email and password; `invalid_credentials` is an `AuthError`. */
    static login(url: string, email: string, password: string, options?: Omit<SessionTokensOptions, 'url' | 'tokens'>): Promise<SessionTokens>;
    /** The pair held now (to store it), or `null` after logout. */
    current(): StoredTokens | null;
    get(): Promise<string>;
    refresh(): Promise<string>;
    private doRefresh;
    /** Ends this login on the server (every node closes its sessions with 4011). */
    logout(): Promise<void>;
}
export { ApiError };
