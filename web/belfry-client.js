// Belfry's browser client: `BelfryClient` (GraphQL over HTTP and one shared
// graphql-transport-ws socket) and `BelfryError`. No DOM and no dependencies; the element
// builds on it, and apps can use it on its own (see web/README.md).
//
// The inbox is gap-free and duplicate-free by construction: the first page is read together
// with its `liveCursor`, the subscription starts `after` it, and every reconnect resumes
// `after` the last change received. Cursors are opaque: they are compared for equality only.

/**
 * @typedef {'LOW' | 'NORMAL' | 'HIGH' | 'URGENT'} Priority
 * @typedef {'IN_APP' | 'EMAIL' | 'SMS' | 'PUSH' | 'WEBHOOK'} Channel
 * @typedef {{ id: string, category: string, priority: Priority, critical: boolean, title: string,
 *   body: string, data: unknown, actionUrl: string | null, icon: string | null, sentAt: string,
 *   seen: boolean, read: boolean, archived: boolean, quiet: boolean, cursor: string }} Notification
 * @typedef {{ id: string, category: string, seen: boolean, read: boolean, archived: boolean }} NotificationState
 * @typedef {{ category: string, unread: number, unseen: number }} CategoryCount
 * @typedef {{ unread: number, unseen: number, byCategory: CategoryCount[] }} Counts
 * @typedef {{ cursor: string, added: Notification[], changed: NotificationState[], removed: string[], counts: Counts }} InboxChange
 * @typedef {{ notifications: Notification[], pageInfo: { hasNextPage: boolean, endCursor: string | null },
 *   liveCursor: string, counts: Counts }} NotificationPage
 * @typedef {{ category: string, channel: Channel, enabled: boolean }} Preference
 * @typedef {{ changed: number, counts: Counts }} MarkAllResult
 * @typedef {'MON' | 'TUE' | 'WED' | 'THU' | 'FRI' | 'SAT' | 'SUN'} Weekday
 * @typedef {{ days: Weekday[], start: string, end: string }} QuietWindow
 * @typedef {{ windows: QuietWindow[], timeZone: string, quietUntil: string | null }} QuietHours
 * @typedef {'HOURLY' | 'DAILY' | 'WEEKLY'} DigestFrequency
 * @typedef {{ frequency: DigestFrequency, at?: string | null, day?: Weekday | null }} DigestSchedule
 * @typedef {{ category: string, channel: Channel, schedule: DigestSchedule, nextAt: string }} DigestSetting
 * @typedef {{ settings: DigestSetting[], timeZone: string }} Digests
 * @typedef {{ message: string, extensions?: { code?: string } }} GraphQLError
 *
 * @typedef {object} Status What the shared connection is doing.
 * @property {'connecting' | 'live' | 'offline' | 'error'} state `error` is final: nothing retries.
 * @property {number} [attempt] Failed attempts in a row (`offline`).
 * @property {number} [retryInMs] Delay before the next attempt (`offline`).
 * @property {BelfryError} [error] Why (`error`).
 *
 * @typedef {string | (() => string | Promise<string>)} TokenSource
 *
 * @typedef {object} SocketLike The part of the browser `WebSocket` the client uses.
 * @property {number} readyState
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((event: unknown) => void) | null} onopen
 * @property {((event: { data: unknown }) => void) | null} onmessage
 * @property {((event: { code: number, reason: string }) => void) | null} onclose
 * @property {((event: unknown) => void) | null} onerror
 *
 * @typedef {new (url: string, protocols?: string | string[]) => SocketLike} SocketConstructor
 * @typedef {(input: string, init: { method: string, headers: Record<string, string>, body: string }) =>
 *   Promise<{ status: number, ok: boolean, json(): Promise<any> }>} FetchLike
 *
 * @typedef {object} ClientOptions
 * @property {string} url The server's base URL (absolute, or relative to the page); `/graphql` is appended.
 * @property {TokenSource} token A user JWT, or a (possibly async) function returning one.
 * @property {SocketConstructor} [WebSocket]
 * @property {FetchLike} [fetch]
 * @property {{ initialMs?: number, maxMs?: number }} [backoff] Reconnect delays (250 ms doubling to 15 s).
 * @property {() => number} [random] Jitter source in [0, 1).
 * @property {(callback: () => void, ms: number) => unknown} [setTimeout]
 * @property {(handle: any) => void} [clearTimeout]
 *
 * @typedef {object} Operation One subscription, kept across reconnects.
 * @property {string} query
 * @property {() => Record<string, unknown>} variables Read at every (re)subscribe.
 * @property {(data: any) => void} next
 * @property {boolean} resumable Resubscribe after RATE_LIMITED or a server `complete`.
 * @property {((status: Status) => void) | undefined} onStatus
 * @property {((error: BelfryError) => void) | undefined} onError
 * @property {string | null} opId The id of its live `subscribe` on the current socket.
 */

const PROTOCOL = 'graphql-transport-ws';
const ACK_TIMEOUT_MS = 10_000;
/** Quiet time after which the client pings: finds connections that died without a close. */
const HEARTBEAT_MS = 20_000;
/** How many notification ids the inbox remembers for de-duplication. */
const DEDUPE_LIMIT = 5_000;

const NOTIFICATION = 'id category priority critical title body data actionUrl icon sentAt seen read archived quiet cursor';
const COUNTS = 'unread unseen byCategory { category unread unseen }';
const PAGE_QUERY = `query BelfryPage($first: Int!, $after: Cursor, $filter: NotificationFilter) {
  notifications(first: $first, after: $after, filter: $filter) {
    edges { node { ${NOTIFICATION} } } pageInfo { hasNextPage endCursor } liveCursor
  }
  counts { ${COUNTS} }
}`;
const INBOX_SUBSCRIPTION = `subscription BelfryInbox($after: Cursor) {
  inbox(after: $after) { cursor added { ${NOTIFICATION} } changed { id category seen read archived } removed counts { ${COUNTS} } }
}`;
const PREFERENCE = 'category channel enabled';
const QUIET_HOURS = 'windows { days start end } timeZone quietUntil';
const DIGESTS = 'settings { category channel schedule { frequency at day } nextAt } timeZone';

/** A failed request or subscription; `code` is the GraphQL `extensions.code` (or NETWORK). */
export class BelfryError extends Error {
  /**
   * @param {string} message
   * @param {string} code BAD_USER_INPUT, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, CONFLICT, RATE_LIMITED,
   *   INTERNAL, or NETWORK when the server could not be reached.
   * @param {{ status?: number, errors?: GraphQLError[], cause?: unknown }} [details]
   */
  constructor(message, code, { status = 0, errors = [], cause } = {}) {
    super(message, { cause });
    this.name = 'BelfryError';
    this.code = code;
    /** The HTTP status (0 for WebSocket errors and unreachable servers). */
    this.status = status;
    /** Every GraphQL error of the response. */
    this.errors = errors;
  }

  /** @param {GraphQLError[]} errors @param {number} [status] */
  static from(errors, status = 0) {
    const first = errors[0];
    return new BelfryError(first?.message ?? 'Unknown error', first?.extensions?.code ?? 'INTERNAL', { status, errors });
  }
}

/**
 * Resolves the GraphQL endpoint (http and ws) of a server base URL.
 * @param {string} url
 */
function endpoints(url) {
  const target = new URL(url, globalThis.location?.href);
  target.search = '';
  target.hash = '';
  if (!target.pathname.endsWith('/graphql')) target.pathname = target.pathname.replace(/\/?$/, '/graphql');
  const http = target.href;
  target.protocol = target.protocol === 'https:' ? 'wss:' : 'ws:';
  return { http, ws: target.href };
}

/** A Belfry client for one signed-in user: queries, mutations and live subscriptions. */
export class BelfryClient {
  #http;
  #wsUrl;
  #tokenSource;
  /** @type {string | undefined} */
  #token;
  /** @type {Promise<string> | undefined} */
  #tokenRequest;
  #WebSocket;
  #fetch;
  #initialMs;
  #maxMs;
  #random;
  #setTimeout;
  #clearTimeout;

  /** @type {Set<Operation>} */
  #ops = new Set();
  /** @type {Map<string, Operation>} */
  #byOpId = new Map();
  /** @type {SocketLike | null} */
  #socket = null;
  #connecting = false;
  #acked = false;
  /** Failed connection attempts since the last `connection_ack`. */
  #attempt = 0;
  /** 4403 closes since the last `connection_ack`: a second one means the token source is stuck. */
  #rejections = 0;
  /** @type {unknown} */
  #retryTimer;
  /** @type {unknown} */
  #ackTimer;
  /** @type {unknown} */
  #heartbeatTimer;
  #nextOpId = 1;
  /** @type {Status | undefined} */
  #status;

  /** @param {ClientOptions} options */
  constructor({ url, token, WebSocket, fetch, backoff = {}, random, setTimeout, clearTimeout }) {
    const { http, ws } = endpoints(url);
    this.#http = http;
    this.#wsUrl = ws;
    this.#tokenSource = token;
    this.#WebSocket = WebSocket ?? /** @type {SocketConstructor | undefined} */ (globalThis.WebSocket);
    this.#fetch = fetch ?? /** @type {FetchLike} */ ((input, init) => globalThis.fetch(input, init));
    this.#initialMs = backoff.initialMs ?? 250;
    this.#maxMs = backoff.maxMs ?? 15_000;
    this.#random = random ?? Math.random;
    this.#setTimeout = setTimeout ?? ((callback, ms) => globalThis.setTimeout(callback, ms));
    this.#clearTimeout = clearTimeout ?? ((handle) => globalThis.clearTimeout(handle));
  }

  /** The GraphQL endpoint over HTTP. */
  get url() {
    return this.#http;
  }

  /** The shared connection's state, or undefined while no subscription is open. */
  get status() {
    return this.#status;
  }

  // ---- HTTP ----

  /**
   * Runs a query or mutation; throws a `BelfryError` on any error. After a 401 a function
   * token source is asked once for a fresh token and the request retried.
   * @param {string} query
   * @param {Record<string, unknown>} [variables]
   * @returns {Promise<any>} the `data` of the response
   */
  async query(query, variables = {}) {
    let response = await this.#post(query, variables, await this.#resolveToken(false));
    if (response.status === 401 && typeof this.#tokenSource === 'function') {
      response = await this.#post(query, variables, await this.#resolveToken(true));
    }
    const { status, body } = response;
    if (Array.isArray(body?.errors) && body.errors.length > 0) throw BelfryError.from(body.errors, status);
    if (status < 200 || status >= 300 || !body || typeof body.data !== 'object' || body.data === null) {
      const code = status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'FORBIDDEN' : 'INTERNAL';
      throw new BelfryError(`Unexpected response (HTTP ${status})`, code, { status });
    }
    return body.data;
  }

  /** @param {string} query @param {Record<string, unknown>} variables @param {string} token */
  async #post(query, variables, token) {
    let response;
    try {
      response = await this.#fetch(this.#http, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (cause) {
      throw new BelfryError('Failed to reach the notification server', 'NETWORK', { cause });
    }
    /** @type {any} */
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON (a proxy's error page): reported by status below.
    }
    return { status: response.status, body };
  }

  /**
   * The token to use; a function source is called again when `fresh` (every connect, and
   * after a rejection). Concurrent callers share one call.
   * @param {boolean} fresh
   * @returns {Promise<string>}
   */
  async #resolveToken(fresh) {
    const source = this.#tokenSource;
    if (typeof source === 'string') return source;
    if (!fresh && this.#token !== undefined) return this.#token;
    this.#tokenRequest ??= (async () => {
      try {
        const token = await source();
        if (typeof token !== 'string' || token === '') throw new Error('the token function returned no token');
        this.#token = token;
        return token;
      } catch (cause) {
        throw new BelfryError('Failed to get a token', 'UNAUTHENTICATED', { cause });
      } finally {
        this.#tokenRequest = undefined;
      }
    })();
    return this.#tokenRequest;
  }

  /** @returns {Promise<string>} the signed-in user's id */
  async viewerId() {
    return (await this.query('{ viewerId }')).viewerId;
  }

  /**
   * One page of the inbox, newest first, with the counts and the `liveCursor` to subscribe after.
   * @param {{ first?: number, after?: string | null, category?: string | null, archived?: boolean, unreadOnly?: boolean }} [options]
   * @returns {Promise<NotificationPage>}
   */
  async notifications({ first = 20, after = null, category = null, archived = false, unreadOnly = false } = {}) {
    const filter = { archived, unreadOnly, ...(category ? { category } : {}) };
    const data = await this.query(PAGE_QUERY, { first, after, filter });
    const { edges, pageInfo, liveCursor } = data.notifications;
    return {
      notifications: edges.map((/** @type {{ node: Notification }} */ edge) => edge.node),
      pageInfo,
      liveCursor,
      counts: data.counts,
    };
  }

  /** @returns {Promise<Counts>} */
  async counts() {
    return (await this.query(`{ counts { ${COUNTS} } }`)).counts;
  }

  /** @returns {Promise<Preference[]>} the explicit switches; anything not listed is on */
  async preferences() {
    return (await this.query(`{ preferences { ${PREFERENCE} } }`)).preferences;
  }

  /** @returns {Promise<Channel[]>} the channels this server delivers on: `IN_APP`, and `EMAIL` and `WEBHOOK` where configured */
  async deliveryChannels() {
    return (await this.query('{ deliveryChannels }')).deliveryChannels;
  }

  /** @param {Preference[]} changes @returns {Promise<Preference[]>} every explicit switch */
  async updatePreferences(changes) {
    const mutation = `mutation BelfryPreferences($changes: [PreferenceInput!]!) {
      updatePreferences(changes: $changes) { ${PREFERENCE} } }`;
    return (await this.query(mutation, { changes })).updatePreferences;
  }

  /** @returns {Promise<QuietHours>} the viewer's quiet hours, the zone they are read in, and when the quiet time now ends */
  async quietHours() {
    return (await this.query(`{ quietHours { ${QUIET_HOURS} } }`)).quietHours;
  }

  /** Replaces the viewer's quiet hours (`[]` clears them). @param {QuietWindow[]} windows @returns {Promise<QuietHours>} */
  async setQuietHours(windows) {
    const mutation = `mutation BelfryQuietHours($windows: [QuietWindowInput!]!) {
      setQuietHours(windows: $windows) { ${QUIET_HOURS} } }`;
    return (await this.query(mutation, { windows })).setQuietHours;
  }

  /** @returns {Promise<Digests>} the viewer's digests, and the zone their times are read in */
  async digests() {
    return (await this.query(`{ digests { ${DIGESTS} } }`)).digests;
  }

  /**
   * Sets when the digest of a category on a channel closes; `null` turns it off.
   * @param {string} category @param {Channel} channel @param {DigestSchedule | null} schedule
   * @returns {Promise<Digests>}
   */
  async setDigest(category, channel, schedule) {
    const mutation = `mutation BelfryDigest($category: String!, $channel: Channel!, $schedule: DigestScheduleInput) {
      setDigest(category: $category, channel: $channel, schedule: $schedule) { ${DIGESTS} } }`;
    return (await this.query(mutation, { category, channel, schedule })).setDigest;
  }

  /** @param {string} id @returns {Promise<Notification>} */
  markSeen(id) {
    return this.#mutateOne('markSeen', id);
  }

  /** @param {string} id @returns {Promise<Notification>} */
  markRead(id) {
    return this.#mutateOne('markRead', id);
  }

  /** @param {string} id @returns {Promise<Notification>} */
  markUnread(id) {
    return this.#mutateOne('markUnread', id);
  }

  /** @param {string} id @returns {Promise<Notification>} */
  archive(id) {
    return this.#mutateOne('archive', id);
  }

  /** @param {string} id @returns {Promise<Notification>} */
  unarchive(id) {
    return this.#mutateOne('unarchive', id);
  }

  /** @param {string} name @param {string} id */
  async #mutateOne(name, id) {
    const data = await this.query(`mutation BelfryOne($id: ID!) { ${name}(id: $id) { ${NOTIFICATION} } }`, { id });
    return data[name];
  }

  /**
   * Marks everything read, optionally one category only and up to a notification's cursor
   * (so one arriving meanwhile stays unread).
   * @param {{ category?: string | null, upTo?: string | null }} [options]
   * @returns {Promise<MarkAllResult>}
   */
  markAllRead(options = {}) {
    return this.#markAll('markAllRead', options);
  }

  /** Like `markAllRead`, for seen (opening the inbox). @param {{ category?: string | null, upTo?: string | null }} [options] */
  markAllSeen(options = {}) {
    return this.#markAll('markAllSeen', options);
  }

  /** @param {string} name @param {{ category?: string | null, upTo?: string | null }} options @returns {Promise<MarkAllResult>} */
  async #markAll(name, { category = null, upTo = null }) {
    const mutation = `mutation BelfryAll($category: String, $upTo: Cursor) {
      ${name}(category: $category, upTo: $upTo) { changed counts { ${COUNTS} } } }`;
    return (await this.query(mutation, { category, upTo }))[name];
  }

  // ---- Subscriptions ----

  /**
   * Every change to the inbox after `after` (a page's `liveCursor`), live, resumed after the
   * last change received on every reconnect. `added` notifications are de-duplicated by id.
   * `onError` means the subscription is over (it will not resume).
   * @param {{ after?: string | null, onChange?: (change: InboxChange) => void,
   *   onStatus?: (status: Status) => void, onError?: (error: BelfryError) => void }} [options]
   */
  inbox({ after = null, onChange, onStatus, onError } = {}) {
    let last = after;
    /** @type {Set<string>} */
    const ids = new Set();
    const op = this.#register({
      query: INBOX_SUBSCRIPTION,
      variables: () => ({ after: last }),
      resumable: true,
      onStatus,
      onError,
      next: (/** @type {{ inbox: InboxChange }} */ data) => {
        const change = data.inbox;
        if (change.cursor === last) return;
        last = change.cursor;
        const added = change.added.filter((n) => !ids.has(n.id));
        for (const n of added) {
          ids.add(n.id);
          if (ids.size > DEDUPE_LIMIT) ids.delete(/** @type {string} */ (ids.values().next().value));
        }
        onChange?.({ ...change, added });
      },
    });
    return {
      /** The last change's cursor (where a resume continues). */
      get cursor() {
        return last;
      },
      close: () => this.#unregister(op),
    };
  }

  /**
   * The counts now, then after every change.
   * @param {{ onCounts?: (counts: Counts) => void, onStatus?: (status: Status) => void,
   *   onError?: (error: BelfryError) => void }} [options]
   */
  unreadCount({ onCounts, onStatus, onError } = {}) {
    const op = this.#register({
      query: `subscription BelfryCounts { unreadCount { ${COUNTS} } }`,
      variables: () => ({}),
      resumable: true,
      onStatus,
      onError,
      next: (/** @type {{ unreadCount: Counts }} */ data) => onCounts?.(data.unreadCount),
    });
    return { close: () => this.#unregister(op) };
  }

  /** @param {Omit<Operation, 'opId'>} spec @returns {Operation} */
  #register(spec) {
    /** @type {Operation} */
    const op = { ...spec, opId: null };
    this.#ops.add(op);
    if (this.#status) op.onStatus?.(this.#status);
    if (this.#acked) this.#subscribe(op);
    else this.#connect();
    return op;
  }

  /** @param {Operation} op */
  #unregister(op) {
    if (!this.#ops.delete(op)) return;
    if (op.opId !== null) {
      this.#byOpId.delete(op.opId);
      this.#send({ id: op.opId, type: 'complete' });
      op.opId = null;
    }
    if (this.#ops.size === 0) this.#shutdown();
  }

  /** No subscription left: close the socket and stop retrying. */
  #shutdown() {
    if (this.#retryTimer !== undefined) this.#clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#attempt = 0;
    this.#detach(1000, 'No subscriptions left');
    this.#status = undefined;
  }

  #connect() {
    if (this.#socket || this.#connecting || this.#retryTimer !== undefined || this.#status?.state === 'error') return;
    this.#connecting = true;
    this.#setStatus({ state: 'connecting', attempt: this.#attempt });
    this.#resolveToken(true).then(
      (token) => {
        this.#connecting = false;
        if (this.#ops.size > 0) this.#open(token);
      },
      () => {
        this.#connecting = false;
        if (this.#ops.size > 0) this.#retry();
      },
    );
  }

  /** @param {string} token */
  #open(token) {
    const Socket = this.#WebSocket;
    if (!Socket) {
      this.#fail(new BelfryError('This environment has no WebSocket', 'INTERNAL'));
      return;
    }
    let socket;
    try {
      socket = new Socket(this.#wsUrl, PROTOCOL);
    } catch (cause) {
      this.#fail(new BelfryError('Failed to open a WebSocket', 'INTERNAL', { cause }));
      return;
    }
    this.#socket = socket;
    this.#acked = false;
    socket.onopen = () => {
      this.#send({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } });
      this.#ackTimer = this.#setTimeout(() => this.#lost(4408, 'Connection acknowledgement timeout'), ACK_TIMEOUT_MS);
    };
    socket.onmessage = (event) => {
      if (this.#socket === socket) this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.#socket === socket) this.#lost(event.code, event.reason);
    };
    // A `close` event always follows an `error` one.
    socket.onerror = () => {};
  }

  /** @param {unknown} data */
  #receive(data) {
    /** @type {any} */
    let message;
    try {
      message = JSON.parse(String(data));
    } catch {
      this.#lost(4400, 'Invalid message from the server');
      return;
    }
    const op = typeof message?.id === 'string' ? this.#byOpId.get(message.id) : undefined;
    if (this.#acked || message?.type === 'connection_ack') this.#beat();
    switch (message?.type) {
      case 'connection_ack':
        if (this.#ackTimer !== undefined) this.#clearTimeout(this.#ackTimer);
        this.#ackTimer = undefined;
        this.#acked = true;
        this.#attempt = 0;
        this.#rejections = 0;
        this.#setStatus({ state: 'live' });
        for (const each of this.#ops) this.#subscribe(each);
        break;
      case 'ping':
        this.#send({ type: 'pong' });
        break;
      case 'next':
        if (!op) break;
        if (message.payload?.data) {
          op.next(message.payload.data);
        } else if (Array.isArray(message.payload?.errors)) {
          // A result without data ends the operation for us; tell the server too.
          this.#send({ id: message.id, type: 'complete' });
          this.#ended(op, BelfryError.from(message.payload.errors));
        }
        break;
      case 'error':
        if (op) this.#ended(op, BelfryError.from(Array.isArray(message.payload) ? message.payload : []));
        break;
      case 'complete':
        if (!op) break;
        this.#byOpId.delete(/** @type {string} */ (op.opId));
        op.opId = null;
        // A resumable stream never completes on its own: resume shortly, else it is done.
        if (op.resumable) this.#setTimeout(() => this.#ops.has(op) && op.opId === null && this.#subscribe(op), this.#initialMs);
        else this.#unregister(op);
        break;
      default:
        // `pong` and anything newer than this client: nothing to do.
        break;
    }
  }

  /**
   * The server ended an operation with an error: a slow resumable subscriber resubscribes at
   * once (from where it stopped), anything else is over.
   * @param {Operation} op @param {BelfryError} error
   */
  #ended(op, error) {
    if (op.opId !== null) this.#byOpId.delete(op.opId);
    op.opId = null;
    if (op.resumable && error.code === 'RATE_LIMITED') {
      this.#subscribe(op);
      return;
    }
    this.#unregister(op);
    op.onError?.(error);
  }

  /**
   * (Re)starts the quiet timer: after HEARTBEAT_MS without a message, ping; without an answer
   * within ACK_TIMEOUT_MS the connection is dead (a sleeping laptop, a NAT that forgot it) and
   * is replaced, resuming from the last cursor.
   */
  #beat() {
    if (this.#heartbeatTimer !== undefined) this.#clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = this.#setTimeout(() => {
      this.#heartbeatTimer = this.#setTimeout(() => this.#lost(1000, 'No answer to ping'), ACK_TIMEOUT_MS);
      this.#send({ type: 'ping' });
    }, HEARTBEAT_MS);
  }

  /** The browser is back online: skip the rest of the backoff wait. */
  #reconnectNow = () => {
    if (this.#retryTimer === undefined) return;
    this.#clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#ops.size > 0) this.#connect();
  };

  /** @param {Operation} op */
  #subscribe(op) {
    if (!this.#acked) return;
    const id = String(this.#nextOpId++);
    op.opId = id;
    this.#byOpId.set(id, op);
    this.#send({ id, type: 'subscribe', payload: { query: op.query, variables: op.variables() } });
  }

  /** @param {object} message */
  #send(message) {
    if (this.#socket?.readyState === 1) this.#socket.send(JSON.stringify(message));
  }

  /**
   * The socket closed (or is given up on): resume with backoff, unless the token is rejected
   * for good.
   * @param {number} code @param {string} reason
   */
  #lost(code, reason) {
    this.#detach(code >= 4000 && code < 5000 ? code : 1000, reason);
    if (this.#ops.size === 0) return;
    if (code === 4403) {
      this.#rejections += 1;
      const error = new BelfryError(reason || 'The token was rejected', 'UNAUTHENTICATED');
      // A fixed token will not get better; a token function gets one more chance per ack.
      if (typeof this.#tokenSource !== 'function' || this.#rejections > 1) {
        this.#fail(error);
        return;
      }
      this.#token = undefined;
    }
    this.#retry();
  }

  /** Forgets the current socket (closing it if still open) and every server-side operation. */
  /** @param {number} code @param {string} reason */
  #detach(code, reason) {
    const socket = this.#socket;
    if (this.#ackTimer !== undefined) this.#clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (this.#heartbeatTimer !== undefined) this.#clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    this.#socket = null;
    this.#acked = false;
    for (const op of this.#ops) op.opId = null;
    this.#byOpId.clear();
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    if (socket.readyState < 2) {
      try {
        socket.close(code, reason);
      } catch {
        socket.close();
      }
    }
  }

  #retry() {
    this.#attempt += 1;
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** (this.#attempt - 1));
    // Half fixed, half jitter: spreads a fleet of clients reconnecting after a restart.
    const delay = Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
    this.#setStatus({ state: 'offline', attempt: this.#attempt, retryInMs: delay });
    this.#retryTimer = this.#setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#ops.size > 0) this.#connect();
    }, delay);
    // The same function each time, so the listener is added once.
    globalThis.addEventListener?.('online', this.#reconnectNow, { once: true });
  }

  /** Final: every subscription gets the error and nothing reconnects. @param {BelfryError} error */
  #fail(error) {
    this.#setStatus({ state: 'error', error });
    const ops = [...this.#ops];
    this.#ops.clear();
    this.#detach(1000, 'Giving up');
    for (const op of ops) op.onError?.(error);
  }

  /** @param {Status} status */
  #setStatus(status) {
    this.#status = status;
    for (const op of this.#ops) op.onStatus?.(status);
  }
}
