/**
 * Stop a subscription. Answered by unsubscribed (reason requested) or error not_subscribed.
 */
export interface UnsubscribeFrame {
    type: 'unsubscribe';
    stream: 'analyses' | 'insights' | 'samples';
    /**
     * Default: the session's user.
     */
    user_id?: string;
}
