/**
 * @clarity/client: the TypeScript SDK of the Clarity server (README.md in this folder).
 * Zero runtime dependencies: WebSocket and fetch of the platform.
 */
export { ClarityClient } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, WebSocketConstructor, WebSocketLike } from './client.js';
export { ClarityRest } from './rest.js';
export type { Analysis, Change, ChangePage, DeleteResult, DocumentQuery, HistoryQuery, Insight, Profile, RestOptions, Scope, Share, UploadResult, } from './rest.js';
export { SessionTokens } from './tokens.js';
export type { SessionTokensOptions, StoredTokens, TokenPair, TokenProvider } from './tokens.js';
export { IndexedDBStorage, MemoryStorage } from './storage.js';
export type { OutboxRecord, OutboxStorage, SeriesBody } from './storage.js';
export type { BatchResult } from './outbox.js';
export { Subscription } from './subscriptions.js';
export type { ReloadInfo, Stream, StreamEvent, SubscribeOptions } from './subscriptions.js';
export { ApiError, AuthError, ClarityError } from './errors.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export type * from './generated/index.js';
