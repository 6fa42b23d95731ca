/**
 * The errors the SDK surfaces. One class per way a caller must react:
 *
 * - `AuthError`: the credentials are no good (expired refresh token, logged out, account
 *   erased, a token the server refuses even after a refresh). The client stops: it never
 *   retries these silently. Sign in again and make a new client; the outbox keeps what was
 *   not acknowledged.
 * - `ApiError`: a REST call answered with an error body `{"error":{"code","message"}}`.
 * - `ClarityError`: anything else the server refused for good (a batch over its limits, a
 *   subscription it forbids), with the server's stable `code`.
 */
export class ClarityError extends Error {
    /** The server's stable code (`forbidden`, `too_many_samples`...), or the SDK's own. */
    code;
    /** How long the server asked to wait before trying again, when it said. */
    retryAfterMs;
    constructor(code, message, retryAfterMs) {
        super(message);
        this.name = 'ClarityError';
        this.code = code;
        this.retryAfterMs = retryAfterMs;
    }
}
/** A REST answer with an error status. */
export class ApiError extends ClarityError {
    status;
    constructor(status, code, message, retryAfterMs) {
        super(code, message, retryAfterMs);
        this.name = 'ApiError';
        this.status = status;
    }
}
/** The session cannot be authenticated any more; see the module comment. */
export class AuthError extends ClarityError {
    /** The HTTP status that said so, when it came from REST. */
    status;
    constructor(code, message, status) {
        super(code, message);
        this.name = 'AuthError';
        this.status = status;
    }
}
/** Whether `e` means "these credentials will not work", as opposed to a passing failure. */
export function isAuthFailure(e) {
    return e instanceof AuthError || (e instanceof ApiError && (e.status === 401 || e.status === 403));
}
/** Reads `{"error":{"code","message"}}` out of a failed response. */
export async function apiError(resp) {
    let code = `http_${resp.status}`;
    let message = resp.statusText || code;
    let retryAfterMs;
    try {
        const body = (await resp.json());
        if (body?.error?.code)
            code = body.error.code;
        if (body?.error?.message)
            message = body.error.message;
        if (typeof body?.retry_after_ms === 'number')
            retryAfterMs = body.retry_after_ms;
    }
    catch {
        // Not JSON (a proxy's page): the status says enough.
    }
    const header = Number(resp.headers.get('retry-after'));
    if (retryAfterMs === undefined && header > 0)
        retryAfterMs = header * 1000;
    return new ApiError(resp.status, code, message, retryAfterMs);
}
