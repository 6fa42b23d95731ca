/**
 * The client read too slowly: events after last_offset were not delivered and the subscription ended. Subscribe again with since=last_offset to resume (replayed from the store).
 */
export interface LaggedFrame {
    type: 'lagged';
    stream: 'analyses' | 'insights';
    user_id: string;
    last_offset: number;
}
