/**
 * A subscription ended: requested (the client's unsubscribe) or revoked (the owner withdrew the share; subscribing again gives forbidden).
 */
export interface UnsubscribedFrame {
    type: 'unsubscribed';
    stream: 'analyses' | 'insights' | 'samples';
    user_id: string;
    reason: 'requested' | 'revoked';
}
