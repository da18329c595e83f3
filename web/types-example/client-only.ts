// The client's declarations need no DOM: a Node program or a worker types the client with
// `lib: ["ES2022"]` alone (tsconfig.client-only.json), handing it its own fetch and WebSocket.

import {
  BelfryClient,
  type FetchLike,
  type NotificationPage,
  type SocketConstructor,
} from 'https://belfry.example.com/sdk/belfry-client.js';

declare const fetchWithUndici: FetchLike;
declare const WebSocketFromWs: SocketConstructor;

const client = new BelfryClient({
  url: 'https://belfry.example.com',
  token: 'SERVICE_MINTED_JWT',
  fetch: fetchWithUndici,
  WebSocket: WebSocketFromWs,
  backoff: { initialMs: 1000 },
});

export const firstPage: Promise<NotificationPage> = client.notifications({ first: 5 });
export let unread = 0;
export const live = client.unreadCount({ onCounts: (counts) => (unread = counts.unread) });
// @ts-expect-error: `backoff` takes milliseconds as numbers
export const wrong = new BelfryClient({ url: '/', token: 'jwt', backoff: { initialMs: '1s' } });
