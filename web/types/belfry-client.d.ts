// TypeScript declarations for Belfry's browser client, served at /sdk/belfry-client.d.ts beside
// /sdk/belfry-client.js. They describe the module exactly; no DOM types are needed, so the
// client can be typed in Node or a worker as well. See web/README.md ("TypeScript").

export type Priority = 'LOW' | 'NORMAL' | 'HIGH' | 'URGENT';
export type Channel = 'IN_APP' | 'EMAIL' | 'SMS' | 'PUSH' | 'WEBHOOK';

/** One notification in the signed-in user's inbox. */
export interface Notification {
  id: string;
  category: string;
  priority: Priority;
  critical: boolean;
  title: string;
  body: string;
  /** The sender's JSON payload, as sent. */
  data: unknown;
  actionUrl: string | null;
  icon: string | null;
  /** RFC 3339. */
  sentAt: string;
  seen: boolean;
  read: boolean;
  archived: boolean;
  /** It arrived during the recipient's quiet hours: it is listed, but gets no toast. */
  quiet: boolean;
  /** Opaque; compared for equality only. */
  cursor: string;
}

/** The flags of a notification that changed. */
export interface NotificationState {
  id: string;
  category: string;
  seen: boolean;
  read: boolean;
  archived: boolean;
}

export interface CategoryCount {
  category: string;
  unread: number;
  unseen: number;
}

export interface Counts {
  unread: number;
  unseen: number;
  byCategory: CategoryCount[];
}

/** One change to the inbox, as `inbox({ onChange })` receives it. */
export interface InboxChange {
  cursor: string;
  /** New notifications, de-duplicated by id. */
  added: Notification[];
  changed: NotificationState[];
  /** Ids of notifications that left the inbox for good (expired). */
  removed: string[];
  counts: Counts;
}

/** One page of the inbox, newest first. */
export interface NotificationPage {
  notifications: Notification[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  /** Where a live subscription starts so that nothing is missed: pass it as `inbox({ after })`. */
  liveCursor: string;
  counts: Counts;
}

/** One switch: notifications of `category` on `channel`. */
export interface Preference {
  category: string;
  channel: Channel;
  enabled: boolean;
}

export interface MarkAllResult {
  /** How many notifications changed. */
  changed: number;
  counts: Counts;
}

export type Weekday = 'MON' | 'TUE' | 'WED' | 'THU' | 'FRI' | 'SAT' | 'SUN';

/**
 * From `start` on each of `days` until `end` (`HH:MM`, wall-clock times in the person's zone);
 * it ends the next day when `end` is not after `start`, and lasts the whole day when they are equal.
 */
export interface QuietWindow {
  days: Weekday[];
  start: string;
  end: string;
}

/** A person's quiet hours: in-app notifications arrive without a toast; email and webhooks wait. */
export interface QuietHours {
  windows: QuietWindow[];
  /** The IANA zone the windows are read in: the person's profile's, else `UTC`. */
  timeZone: string;
  /** RFC 3339: when the quiet time the person is in now ends; null outside quiet hours. */
  quietUntil: string | null;
}

export type DigestFrequency = 'HOURLY' | 'DAILY' | 'WEEKLY';

/**
 * When a digest closes: every hour on the hour, daily at `at`, or weekly on `day` at `at`
 * (`HH:MM`, in the person's zone). The server gives null for what the frequency does not use.
 */
export interface DigestSchedule {
  frequency: DigestFrequency;
  at?: string | null;
  day?: Weekday | null;
}

/** The notifications of `category` on `channel` go out together, in one digest per period. */
export interface DigestSetting {
  category: string;
  channel: Channel;
  schedule: DigestSchedule;
  /** RFC 3339: when the next digest for it closes. */
  nextAt: string;
}

/** A person's digests; a category and channel not listed has none (each notification goes on its own). */
export interface Digests {
  settings: DigestSetting[];
  /** The IANA zone the schedules are read in: the person's profile's, else `UTC`. */
  timeZone: string;
}

export interface GraphQLError {
  message: string;
  extensions?: { code?: string };
}

/** What the shared connection is doing. */
export interface Status {
  /** `error` is final: nothing retries. */
  state: 'connecting' | 'live' | 'offline' | 'error';
  /** Failed attempts in a row (`offline`). */
  attempt?: number;
  /** Delay before the next attempt (`offline`). */
  retryInMs?: number;
  /** Why (`error`). */
  error?: BelfryError;
}

/** A user JWT, or a (possibly async) function returning one, called on every connect and after a rejection. */
export type TokenSource = string | (() => string | Promise<string>);

/** The part of the browser `WebSocket` the client uses. */
export interface SocketLike {
  readyState: number;
  send: (data: string) => void;
  close: (code?: number, reason?: string) => void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type SocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

/** The part of `fetch` the client uses. */
export type FetchLike = (
  input: string,
  init: { method: string; headers: Record<string, string>; body: string },
) => Promise<{ status: number; ok: boolean; json(): Promise<any> }>;

export interface ClientOptions {
  /** The server's base URL (absolute, or relative to the page); `/graphql` is appended. */
  url: string;
  /** A user JWT, or a (possibly async) function returning one. */
  token: TokenSource;
  /** Default: the global `WebSocket`. */
  WebSocket?: SocketConstructor;
  /** Default: the global `fetch`. */
  fetch?: FetchLike;
  /** Reconnect delays (250 ms doubling to 15 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Jitter source in [0, 1); default `Math.random`. */
  random?: () => number;
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
}

export interface NotificationsOptions {
  /** Default 20, at most 100. */
  first?: number;
  /** The previous page's `pageInfo.endCursor`. */
  after?: string | null;
  category?: string | null;
  archived?: boolean;
  unreadOnly?: boolean;
}

export interface MarkAllOptions {
  /** One category only; default: all. */
  category?: string | null;
  /** Up to this notification's `cursor`, so one arriving meanwhile is left alone. */
  upTo?: string | null;
}

export interface InboxOptions {
  /** Where to start: a page's `liveCursor`. */
  after?: string | null;
  onChange?: (change: InboxChange) => void;
  onStatus?: (status: Status) => void;
  /** The subscription is over: it will not resume. */
  onError?: (error: BelfryError) => void;
}

export interface UnreadCountOptions {
  onCounts?: (counts: Counts) => void;
  onStatus?: (status: Status) => void;
  /** The subscription is over: it will not resume. */
  onError?: (error: BelfryError) => void;
}

/** A live subscription; `close()` ends it (the last one closes the shared WebSocket). */
export interface Subscription {
  close: () => void;
}

export interface InboxSubscription extends Subscription {
  /** The last change's cursor (where a resume continues). */
  readonly cursor: string | null;
}

/** A failed request or subscription. */
export declare class BelfryError extends Error {
  /**
   * @param code BAD_USER_INPUT, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, CONFLICT, RATE_LIMITED,
   *   INTERNAL, or NETWORK when the server could not be reached.
   */
  constructor(message: string, code: string, details?: { status?: number; errors?: GraphQLError[]; cause?: unknown });
  /** The first error of a GraphQL response, with all of them in `errors`. */
  static from(errors: GraphQLError[], status?: number): BelfryError;
  /**
   * The GraphQL `extensions.code` (BAD_USER_INPUT, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND,
   * CONFLICT, RATE_LIMITED, INTERNAL), or NETWORK when the server could not be reached.
   */
  code: string;
  /** The HTTP status (0 for WebSocket errors and unreachable servers). */
  status: number;
  /** Every GraphQL error of the response. */
  errors: GraphQLError[];
}

/** A Belfry client for one signed-in user: queries, mutations and live subscriptions. */
export declare class BelfryClient {
  constructor(options: ClientOptions);
  /** The GraphQL endpoint over HTTP. */
  get url(): string;
  /** The shared connection's state, or undefined while no subscription is open. */
  get status(): Status | undefined;
  /**
   * Runs a query or mutation and returns the `data` of the response (typed as `T`, unchecked);
   * throws a `BelfryError` on any error. After a 401 a function token source is asked once for
   * a fresh token and the request retried.
   */
  query<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** The signed-in user's id. */
  viewerId(): Promise<string>;
  /** One page of the inbox, newest first, with the counts and the `liveCursor` to subscribe after. */
  notifications(options?: NotificationsOptions): Promise<NotificationPage>;
  counts(): Promise<Counts>;
  /** The explicit switches; anything not listed is on. */
  preferences(): Promise<Preference[]>;
  /**
   * The channels this server delivers on: always `IN_APP`, `EMAIL` when it has SMTP configured
   * and `WEBHOOK` when it has a webhook endpoint. Switches for the others change nothing here.
   */
  deliveryChannels(): Promise<Channel[]>;
  /** Sets switches; returns every explicit switch. */
  updatePreferences(changes: Preference[]): Promise<Preference[]>;
  /** The viewer's quiet hours, the zone they are read in, and when the quiet time now ends. */
  quietHours(): Promise<QuietHours>;
  /**
   * Replaces the viewer's quiet hours (`[]` clears them). BAD_USER_INPUT for a bad time, a
   * window without days, more than 28 windows, or windows covering the whole week.
   */
  setQuietHours(windows: QuietWindow[]): Promise<QuietHours>;
  /** The viewer's digests, and the zone their times are read in. */
  digests(): Promise<Digests>;
  /**
   * Sets when the digest of `category` on `channel` closes; `null` turns it off. Returns all of
   * them. BAD_USER_INPUT for `IN_APP`, a bad time, `DAILY` or `WEEKLY` without `at`, or
   * `WEEKLY` without `day`.
   */
  setDigest(category: string, channel: Channel, schedule: DigestSchedule | null): Promise<Digests>;
  markSeen(id: string): Promise<Notification>;
  markRead(id: string): Promise<Notification>;
  markUnread(id: string): Promise<Notification>;
  archive(id: string): Promise<Notification>;
  unarchive(id: string): Promise<Notification>;
  /** Marks everything read, optionally one category only and up to a notification's cursor. */
  markAllRead(options?: MarkAllOptions): Promise<MarkAllResult>;
  /** Like `markAllRead`, for seen (opening the inbox). */
  markAllSeen(options?: MarkAllOptions): Promise<MarkAllResult>;
  /**
   * Every change to the inbox after `after` (a page's `liveCursor`), live, resumed after the
   * last change received on every reconnect.
   */
  inbox(options?: InboxOptions): InboxSubscription;
  /** The counts now, then after every change. */
  unreadCount(options?: UnreadCountOptions): Subscription;
  #private;
}
