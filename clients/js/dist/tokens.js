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
import { ApiError, AuthError, apiError } from './errors.js';
function stored(t) {
    if ('expires_at' in t)
        return { ...t };
    return {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        expires_at: Date.now() + (Number(t.expires_in) || 0) * 1000,
    };
}
export function baseUrl(url) {
    return url.replace(/\/+$/, '');
}
async function post(f, url, path, body, token) {
    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (token)
        headers.authorization = `Bearer ${token}`;
    return f(`${baseUrl(url)}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
}
/** Tokens of the server's local accounts (`POST /api/v1/auth/login`). */
export class SessionTokens {
    tokens;
    inflight = null;
    url;
    onChange;
    marginMs;
    fetch;
    constructor(options) {
        this.url = options.url;
        this.tokens = stored(options.tokens);
        this.onChange = options.onChange;
        this.marginMs = options.marginMs ?? 30_000;
        this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    }
    /** Logs in with email and password; `invalid_credentials` is an `AuthError`. */
    static async login(url, email, password, options = {}) {
        const f = options.fetch ?? globalThis.fetch.bind(globalThis);
        const resp = await post(f, url, '/api/v1/auth/login', { email, password });
        if (!resp.ok) {
            const e = await apiError(resp);
            if (resp.status === 401)
                throw new AuthError(e.code, e.message, resp.status);
            throw e;
        }
        const tokens = new SessionTokens({ ...options, url, tokens: (await resp.json()) });
        tokens.onChange?.(tokens.current());
        return tokens;
    }
    /** The pair held now (to store it), or `null` after logout. */
    current() {
        return this.tokens ? { ...this.tokens } : null;
    }
    async get() {
        if (!this.tokens)
            throw new AuthError('logged_out', 'logged out: sign in again');
        if (this.tokens.expires_at - Date.now() < this.marginMs)
            return this.refresh();
        return this.tokens.access_token;
    }
    refresh() {
        if (!this.inflight) {
            this.inflight = this.doRefresh().finally(() => {
                this.inflight = null;
            });
        }
        return this.inflight;
    }
    async doRefresh() {
        const spent = this.tokens;
        if (!spent)
            throw new AuthError('logged_out', 'logged out: sign in again');
        const resp = await post(this.fetch, this.url, '/api/v1/auth/refresh', { refresh_token: spent.refresh_token });
        if (!resp.ok) {
            const e = await apiError(resp);
            if (resp.status === 401 || resp.status === 403 || resp.status === 404) {
                this.tokens = null;
                this.onChange?.(null);
                throw new AuthError(e.code, e.message, resp.status);
            }
            throw e;
        }
        this.tokens = stored((await resp.json()));
        this.onChange?.(this.current());
        return this.tokens.access_token;
    }
    /** Ends this login on the server (every node closes its sessions with 4011). */
    async logout() {
        const t = this.tokens;
        this.tokens = null;
        this.onChange?.(null);
        if (!t)
            return;
        const resp = await post(this.fetch, this.url, '/api/v1/auth/logout', { refresh_token: t.refresh_token }, t.access_token);
        if (!resp.ok && resp.status !== 401)
            throw await apiError(resp);
    }
}
export { ApiError };
