/**
 * @clarity/client: the TypeScript SDK of the Clarity server (README.md in this folder).
 * Zero runtime dependencies: WebSocket and fetch of the platform.
 */
export { ClarityClient } from './client.js';
export { ClarityRest } from './rest.js';
export { SessionTokens } from './tokens.js';
export { IndexedDBStorage, MemoryStorage } from './storage.js';
export { Subscription } from './subscriptions.js';
export { ApiError, AuthError, ClarityError } from './errors.js';
export { Backoff } from './backoff.js';
