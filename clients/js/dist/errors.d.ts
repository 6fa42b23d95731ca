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
export declare class ClarityError extends Error {
    /** The server's stable code (`forbidden`, `too_many_samples`...), or the SDK's own. */
    readonly code: string;
    /** How long the server asked to wait before trying again, when it said. */
    readonly retryAfterMs: number | undefined;
    constructor(code: string, message: string, retryAfterMs?: number);
}
/** A REST answer with an error status. */
export declare class ApiError extends ClarityError {
    readonly status: number;
    constructor(status: number, code: string, message: string, retryAfterMs?: number);
}
/** The session cannot be authenticated any more; see the module comment. */
export declare class AuthError extends ClarityError {
    /** The HTTP status that said so, when it came from REST. */
    readonly status: number | undefined;
    constructor(code: string, message: string, status?: number);
}
/** Whether `e` means "these credentials will not work", as opposed to a passing failure. */
export declare function isAuthFailure(e: unknown): boolean;
/** Reads `{"error":{"code","message"}}` out of a failed response. */
export declare function apiError(resp: Response): Promise<ApiError>;
