// Belfry browser SDK: `BelfryClient` (GraphQL over HTTP and one shared graphql-transport-ws
// socket) and the `<belfry-inbox>` custom element built on it. One plain ES module, no build
// step and no dependencies; type-checked with `tsc --checkJs` (see web/README.md).
//
// The inbox is gap-free and duplicate-free by construction: the first page is read together
// with its `liveCursor`, the subscription starts `after` it, and every reconnect resumes
// `after` the last change received. Cursors are opaque: they are compared for equality only.

/**
 * @typedef {'LOW' | 'NORMAL' | 'HIGH' | 'URGENT'} Priority
 * @typedef {'IN_APP' | 'EMAIL' | 'SMS' | 'PUSH' | 'WEBHOOK'} Channel
 * @typedef {{ id: string, category: string, priority: Priority, critical: boolean, title: string,
 *   body: string, data: unknown, actionUrl: string | null, icon: string | null, sentAt: string,
 *   seen: boolean, read: boolean, archived: boolean, cursor: string }} Notification
 * @typedef {{ id: string, category: string, seen: boolean, read: boolean, archived: boolean }} NotificationState
 * @typedef {{ category: string, unread: number, unseen: number }} CategoryCount
 * @typedef {{ unread: number, unseen: number, byCategory: CategoryCount[] }} Counts
 * @typedef {{ cursor: string, added: Notification[], changed: NotificationState[], counts: Counts }} InboxChange
 * @typedef {{ notifications: Notification[], pageInfo: { hasNextPage: boolean, endCursor: string | null },
 *   liveCursor: string, counts: Counts }} NotificationPage
 * @typedef {{ category: string, channel: Channel, enabled: boolean }} Preference
 * @typedef {{ changed: number, counts: Counts }} MarkAllResult
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

const NOTIFICATION = 'id category priority critical title body data actionUrl icon sentAt seen read archived cursor';
const COUNTS = 'unread unseen byCategory { category unread unseen }';
const PAGE_QUERY = `query BelfryPage($first: Int!, $after: Cursor, $filter: NotificationFilter) {
  notifications(first: $first, after: $after, filter: $filter) {
    edges { node { ${NOTIFICATION} } } pageInfo { hasNextPage endCursor } liveCursor
  }
  counts { ${COUNTS} }
}`;
const INBOX_SUBSCRIPTION = `subscription BelfryInbox($after: Cursor) {
  inbox(after: $after) { cursor added { ${NOTIFICATION} } changed { id category seen read archived } counts { ${COUNTS} } }
}`;
const PREFERENCE = 'category channel enabled';

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

  /** @param {Preference[]} changes @returns {Promise<Preference[]>} every explicit switch */
  async updatePreferences(changes) {
    const mutation = `mutation BelfryPreferences($changes: [PreferenceInput!]!) {
      updatePreferences(changes: $changes) { ${PREFERENCE} } }`;
    return (await this.query(mutation, { changes })).updatePreferences;
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

// ---- The <belfry-inbox> element ----

const Base = /** @type {typeof HTMLElement} */ (globalThis.HTMLElement ?? class {});
/** @type {Channel[]} */
const CHANNELS = ['IN_APP', 'EMAIL', 'SMS', 'PUSH', 'WEBHOOK'];
const CHANNEL_LABELS = { IN_APP: 'In-app', EMAIL: 'Email', SMS: 'SMS', PUSH: 'Push', WEBHOOK: 'Webhook' };
const TOAST_MS = 6_000;
const MAX_TOASTS = 3;

const svg = (/** @type {string} */ path) =>
  `<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${path}</svg>`;
const ICONS = {
  bell: svg('<path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9"/><path d="M10.3 21a1.94 1.94 0 0 0 3.4 0"/>'),
  gear: svg('<circle cx="12" cy="12" r="3"/><path d="M19.4 15a1.65 1.65 0 0 0 .33 1.82l.06.06a2 2 0 1 1-2.83 2.83l-.06-.06a1.65 1.65 0 0 0-1.82-.33 1.65 1.65 0 0 0-1 1.51V21a2 2 0 0 1-4 0v-.09A1.65 1.65 0 0 0 9 19.4a1.65 1.65 0 0 0-1.82.33l-.06.06a2 2 0 1 1-2.83-2.83l.06-.06A1.65 1.65 0 0 0 4.68 15a1.65 1.65 0 0 0-1.51-1H3a2 2 0 0 1 0-4h.09A1.65 1.65 0 0 0 4.6 9a1.65 1.65 0 0 0-.33-1.82l-.06-.06a2 2 0 1 1 2.83-2.83l.06.06A1.65 1.65 0 0 0 9 4.68a1.65 1.65 0 0 0 1-1.51V3a2 2 0 0 1 4 0v.09a1.65 1.65 0 0 0 1 1.51 1.65 1.65 0 0 0 1.82-.33l.06-.06a2 2 0 1 1 2.83 2.83l-.06.06A1.65 1.65 0 0 0 19.4 9a1.65 1.65 0 0 0 1.51 1H21a2 2 0 0 1 0 4h-.09a1.65 1.65 0 0 0-1.51 1z"/>'),
  archive: svg('<rect x="3" y="4" width="18" height="4" rx="1"/><path d="M5 8v11a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8M10 12h4"/>'),
  read: svg('<path d="M20 6 9 17l-5-5"/>'),
  unread: svg('<circle cx="12" cy="12" r="4" fill="currentColor"/>'),
  close: svg('<path d="M18 6 6 18M6 6l12 12"/>'),
  back: svg('<path d="m15 18-6-6 6-6"/>'),
};

const LIGHT = `--_bg: var(--belfry-bg, #ffffff); --_fg: var(--belfry-fg, #1f2328); --_muted: var(--belfry-muted, #636c76);
  --_border: var(--belfry-border, #d8dee4); --_hover: var(--belfry-hover, #f3f4f6); --_unread-bg: var(--belfry-unread-bg, #f1f4ff);
  --_accent: var(--belfry-accent, #3557d4); --_accent-fg: var(--belfry-accent-fg, #ffffff); --_badge: var(--belfry-badge, #d1242f);
  --_high: var(--belfry-high, #9a6700); --_urgent: var(--belfry-urgent, #d1242f); --_live: var(--belfry-live, #1a7f37);
  --_shadow: var(--belfry-shadow, 0 12px 32px rgb(31 35 40 / .18), 0 2px 6px rgb(31 35 40 / .08)); color-scheme: light;`;
const DARK = `--_bg: var(--belfry-bg, #1d2129); --_fg: var(--belfry-fg, #e7e9ee); --_muted: var(--belfry-muted, #9ea7b6);
  --_border: var(--belfry-border, #343a46); --_hover: var(--belfry-hover, #272c36); --_unread-bg: var(--belfry-unread-bg, #232a3d);
  --_accent: var(--belfry-accent, #7d97ff); --_accent-fg: var(--belfry-accent-fg, #10131a); --_badge: var(--belfry-badge, #f85149);
  --_high: var(--belfry-high, #d29922); --_urgent: var(--belfry-urgent, #ff7b72); --_live: var(--belfry-live, #3fb950);
  --_shadow: var(--belfry-shadow, 0 12px 32px rgb(0 0 0 / .5)); color-scheme: dark;`;

const STYLE = `
:host { ${LIGHT} position: relative; display: inline-block; vertical-align: middle;
  font: var(--belfry-font, 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif); color: var(--_fg); }
:host([theme="dark"]) { ${DARK} }
@media (prefers-color-scheme: dark) { :host(:not([theme="light"])) { ${DARK} } }
[hidden] { display: none !important; }
* { box-sizing: border-box; }
button { font: inherit; color: inherit; background: none; border: 0; padding: 0; cursor: pointer; }
button:focus-visible, input:focus-visible, [tabindex="-1"]:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
.icon { display: inline-grid; place-items: center; width: 30px; height: 30px; border-radius: 8px; color: var(--_muted); }
.icon:hover { background: var(--_hover); color: var(--_fg); }
.bell { position: relative; display: grid; place-items: center; width: 40px; height: 40px; border-radius: 50%; color: var(--belfry-bell-color, currentColor); }
.bell:hover, .bell[aria-expanded="true"] { background: var(--_hover); }
.bell svg { width: 22px; height: 22px; }
.badge { position: absolute; top: 2px; inset-inline-end: 0; min-width: 18px; height: 18px; padding: 0 5px; border-radius: 9px;
  background: var(--_badge); color: #fff; font-size: 11px; font-weight: 700; line-height: 18px; text-align: center;
  box-shadow: 0 0 0 2px var(--_bg); animation: pop .25s ease-out; }
.panel { position: absolute; z-index: var(--belfry-z-index, 1000); top: calc(100% + 8px); inset-inline-end: 0;
  width: var(--belfry-panel-width, min(380px, calc(100vw - 16px))); max-height: var(--belfry-panel-height, min(540px, 80vh));
  display: flex; flex-direction: column; background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border);
  border-radius: var(--belfry-radius, 12px); box-shadow: var(--_shadow); overflow: hidden; animation: drop .16s ease-out; }
:host([position$="start"]) .panel { inset-inline-end: auto; inset-inline-start: 0; }
:host([position^="top"]) .panel { top: auto; bottom: calc(100% + 8px); }
.panel:focus { outline: none; }
header { display: flex; align-items: center; gap: 4px; padding: 10px 10px 6px 16px; }
h2 { margin: 0; font-size: 15px; font-weight: 650; flex: 1; display: flex; align-items: center; gap: 8px; }
.status { display: inline-flex; align-items: center; gap: 5px; font-size: 11px; font-weight: 400; color: var(--_muted); }
.status::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--_muted); }
.status[data-state="live"]::before { background: var(--_live); }
.status[data-state="connecting"]::before { background: var(--_high); animation: pulse 1s ease-in-out infinite alternate; }
.status[data-state="error"]::before { background: var(--_urgent); }
.status[data-state="live"] .label { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
.text-button { font-size: 12px; color: var(--_accent); padding: 4px 8px; border-radius: 6px; }
.text-button:hover { background: var(--_hover); }
.text-button:disabled { color: var(--_muted); cursor: default; background: none; }
.error { display: flex; align-items: start; gap: 8px; margin: 4px 10px; padding: 8px 10px; border-radius: 8px; font-size: 13px;
  background: color-mix(in srgb, var(--_urgent) 12%, var(--_bg)); color: var(--_fg); border: 1px solid color-mix(in srgb, var(--_urgent) 40%, var(--_bg)); }
.error span { flex: 1; }
.error .icon { width: 22px; height: 22px; }
.tabs { display: flex; gap: 2px; padding: 0 10px; border-bottom: 1px solid var(--_border); overflow-x: auto; scrollbar-width: none; }
.tab { display: inline-flex; align-items: center; gap: 6px; padding: 8px 10px; font-size: 13px; color: var(--_muted);
  border-bottom: 2px solid transparent; white-space: nowrap; text-transform: capitalize; }
.tab[aria-selected="true"] { color: var(--_fg); border-bottom-color: var(--_accent); font-weight: 600; }
.tab:hover { color: var(--_fg); }
.tab-count { min-width: 18px; padding: 0 5px; border-radius: 9px; font-size: 11px; line-height: 17px; text-align: center;
  background: var(--_hover); color: var(--_fg); font-weight: 600; }
.view-inbox { flex: 1; min-height: 0; display: flex; flex-direction: column; }
.scroll { flex: 1; min-height: 0; overflow-y: auto; overscroll-behavior: contain; }
ul { list-style: none; margin: 0; padding: 0; }
.item { position: relative; display: flex; align-items: stretch; border-bottom: 1px solid var(--_border); }
.item:hover, .item:focus-within { background: var(--_hover); }
.item[data-read="false"] { background: var(--_unread-bg); }
.item[data-read="false"]:hover, .item[data-read="false"]:focus-within { background: color-mix(in srgb, var(--_unread-bg) 70%, var(--_hover)); }
.item[data-priority="HIGH"] { box-shadow: inset 3px 0 0 var(--_high); }
.item[data-priority="URGENT"] { box-shadow: inset 3px 0 0 var(--_urgent); }
.open { flex: 1; min-width: 0; display: flex; gap: 10px; padding: 12px 4px 12px 14px; text-align: start; }
.open:focus-visible { outline-offset: -2px; }
.dot { flex: none; width: 8px; height: 8px; margin-top: 6px; border-radius: 50%; background: transparent; }
.item[data-read="false"] .dot { background: var(--_accent); }
.thumb { flex: none; width: 32px; height: 32px; border-radius: 8px; object-fit: cover; display: grid; place-items: center; font-size: 18px; background: var(--_hover); }
.text { min-width: 0; display: grid; gap: 2px; }
.title { font-weight: 450; overflow-wrap: anywhere; }
.item[data-read="false"] .title, .toast .title { font-weight: 650; }
.body { color: var(--_muted); font-size: 13px; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere; }
.meta { display: flex; flex-wrap: wrap; gap: 6px; font-size: 12px; color: var(--_muted); }
.meta .category { text-transform: capitalize; }
.flag { font-size: 10px; font-weight: 700; letter-spacing: .04em; text-transform: uppercase; padding: 0 5px; border-radius: 4px; line-height: 16px; }
.flag.HIGH { color: var(--_high); border: 1px solid currentColor; }
.flag.URGENT { color: #fff; background: var(--_urgent); }
.actions { display: flex; flex-direction: column; gap: 2px; padding: 8px 8px 8px 0; opacity: .0; transition: opacity .12s; }
.item:hover .actions, .item:focus-within .actions { opacity: 1; }
@media (hover: none) { .actions { opacity: 1; } }
.empty, .loading { padding: 36px 16px; text-align: center; color: var(--_muted); }
.loading { padding: 12px; font-size: 12px; }
.sentinel { height: 1px; }
.preferences { flex: 1; min-height: 0; overflow: auto; padding: 0 12px 12px; }
.preferences .bar { display: flex; align-items: center; gap: 6px; padding: 4px 0 8px; font-weight: 600; }
table { width: 100%; border-collapse: collapse; font-size: 12px; }
th { font-weight: 600; color: var(--_muted); padding: 6px 4px; text-align: center; }
th[scope="row"] { text-align: start; color: var(--_fg); text-transform: capitalize; font-size: 13px; }
td { text-align: center; padding: 6px 4px; border-top: 1px solid var(--_border); }
th[scope="row"] { border-top: 1px solid var(--_border); }
input[role="switch"] { appearance: none; position: relative; width: 30px; height: 18px; margin: 0; border-radius: 9px;
  background: var(--_border); cursor: pointer; transition: background .15s; vertical-align: middle; }
input[role="switch"]::after { content: ""; position: absolute; top: 2px; left: 2px; width: 14px; height: 14px; border-radius: 50%;
  background: #fff; box-shadow: 0 1px 2px rgb(0 0 0 / .3); transition: transform .15s; }
input[role="switch"]:checked { background: var(--_accent); }
input[role="switch"]:checked::after { transform: translateX(12px); }
.toasts { position: fixed; z-index: var(--belfry-z-index, 1000); inset-block-end: 16px; inset-inline-end: 16px; display: flex;
  flex-direction: column-reverse; gap: 8px; width: min(360px, calc(100vw - 32px)); pointer-events: none; }
:host([position^="top"]) .toasts { inset-block-end: auto; inset-block-start: 16px; flex-direction: column; }
.toast { pointer-events: auto; display: flex; align-items: start; background: var(--_bg); color: var(--_fg);
  border: 1px solid var(--_border); border-radius: var(--belfry-radius, 12px); box-shadow: var(--_shadow); animation: slide .22s ease-out; overflow: hidden; }
.toast[data-priority="HIGH"] { border-inline-start: 4px solid var(--_high); }
.toast[data-priority="URGENT"] { border-inline-start: 4px solid var(--_urgent); }
.toast .open { padding: 12px 4px 12px 14px; }
.toast .icon { margin: 8px 8px 0 0; }
@keyframes pop { from { transform: scale(.4); } }
@keyframes drop { from { opacity: 0; transform: translateY(-4px); } }
@keyframes slide { from { opacity: 0; transform: translateY(8px); } }
@keyframes pulse { to { opacity: .35; } }
@media (prefers-reduced-motion: reduce) { *, *::before, *::after { animation: none !important; transition: none !important; } }
`;

const TEMPLATE = `<style>${STYLE}</style>
<button part="bell" class="bell" type="button" aria-haspopup="dialog" aria-expanded="false" aria-controls="panel" aria-label="Notifications">
  ${ICONS.bell}<span part="badge" class="badge" hidden>0</span>
</button>
<div part="panel" class="panel" id="panel" role="dialog" aria-labelledby="heading" tabindex="-1" hidden>
  <header part="header">
    <h2 id="heading">Notifications <span part="status" class="status" data-state="connecting" role="status"><span class="label">Connecting…</span></span></h2>
    <button part="mark-all-read" class="text-button" type="button">Mark all read</button>
    <button part="preferences-button" class="icon" type="button" aria-label="Notification settings" title="Notification settings">${ICONS.gear}</button>
  </header>
  <div part="error" class="error" role="alert" hidden><span></span><button class="icon" type="button" aria-label="Dismiss error">${ICONS.close}</button></div>
  <div class="view-inbox">
    <div part="tabs" class="tabs" role="tablist" aria-label="Categories"></div>
    <div class="scroll" role="tabpanel">
      <ul part="list" class="list" aria-label="Notifications"></ul>
      <p part="empty" class="empty" hidden>You're all caught up.</p>
      <p part="loading" class="loading" hidden>Loading…</p>
      <div class="sentinel"></div>
    </div>
  </div>
  <section part="preferences" class="preferences" aria-labelledby="preferences-heading" hidden>
    <div class="bar"><button part="preferences-back" class="icon" type="button" aria-label="Back to notifications">${ICONS.back}</button>
      <span id="preferences-heading">Notification settings</span></div>
    <div class="grid"></div>
  </section>
</div>
<div part="toasts" class="toasts" aria-live="polite"></div>`;

/**
 * Creates an element with attributes (true = present, false/undefined = absent) and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | boolean | undefined>} [attributes]
 * @param {...(Node | string | null | false)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) element.setAttribute(name, '');
    else if (typeof value === 'string') element.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== false) element.append(child);
  return element;
}

/** "3 min ago", from an RFC 3339 timestamp. @param {string} iso */
function ago(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const seconds = (then - Date.now()) / 1000;
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
  /** @type {[number, Intl.RelativeTimeFormatUnit][]} */
  const units = [[60, 'second'], [3600, 'minute'], [86400, 'hour'], [604800, 'day']];
  if (Math.abs(seconds) < 45) return format.format(0, 'second');
  for (const [limit, unit] of units.slice(1)) {
    if (Math.abs(seconds) < limit) {
      const size = unit === 'minute' ? 60 : unit === 'hour' ? 3600 : 86400;
      return format.format(Math.round(seconds / size), unit);
    }
  }
  return new Date(then).toLocaleDateString();
}

/** Only web links and same-site paths are followed (never `javascript:`). @param {string | null} url */
function safeUrl(url) {
  if (!url) return null;
  try {
    const resolved = new URL(url, globalThis.location?.href);
    return resolved.protocol === 'https:' || resolved.protocol === 'http:' ? resolved.href : null;
  } catch {
    return null;
  }
}

/** @param {NotificationState | Notification} n */
const flags = (n) => ({ seen: n.seen, read: n.read, archived: n.archived });

/**
 * `<belfry-inbox>`: a bell with a live badge, a dropdown inbox, toasts and preferences.
 * See web/README.md for its attributes, events and CSS parts.
 */
export class BelfryInbox extends Base {
  static observedAttributes = ['server', 'token', 'theme', 'position', 'badge', 'page-size', 'categories', 'no-toasts'];

  /** @type {BelfryClient | undefined} */
  #client;
  /** @type {{ close(): void } | undefined} */
  #inbox;
  /** @type {(() => string | Promise<string>) | undefined} */
  #tokenProvider;
  /** Bumped by every restart: async results of an older run are dropped. */
  #generation = 0;
  #restartQueued = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #reloadTimer;
  #reloadDelay = 0;

  // Model: every known notification (latest state), the latest state of every id a live change
  // touched (for pages read before it), live arrivals newest first, and one list per tab.
  /** @type {Map<string, Notification>} */
  #byId = new Map();
  /** @type {Map<string, NotificationState>} */
  #latest = new Map();
  /** @type {string[]} */
  #liveAdded = [];
  /** @type {Map<string, { ids: string[], endCursor: string | null, hasNext: boolean, loading: boolean, loaded: boolean }>} */
  #lists = new Map();
  /** @type {Counts} */
  #counts = { unread: 0, unseen: 0, byCategory: [] };
  /** @type {Set<string>} */
  #seenCategories = new Set(['general']);
  /** @type {Map<string, boolean> | undefined} `category/channel` -> enabled, once loaded */
  #preferences;
  #tab = '';
  /** @type {string | null} The list row that holds the roving tabindex. */
  #activeId = null;
  /** @type {'status' | 'action' | null} */
  #errorKind = null;
  /** @type {Map<string, { element: HTMLElement, timer?: ReturnType<typeof setTimeout>, remaining: number, started: number }>} */
  #toasts = new Map();
  /** @type {Map<string, HTMLLIElement>} */
  #rows = new Map();
  /** @type {Map<string, HTMLButtonElement>} */
  #tabs = new Map();
  /** @type {IntersectionObserver | undefined} */
  #observer;
  /** @type {Record<string, HTMLElement>} */
  #ui = {};

  #onDocumentPointer = (/** @type {Event} */ event) => {
    if (this.#isOpen() && !event.composedPath().includes(this)) this.hide(false);
  };

  /** A function returning a user JWT, for apps that mint tokens on their backend (overrides `token`). */
  get tokenProvider() {
    return this.#tokenProvider;
  }

  set tokenProvider(provider) {
    this.#tokenProvider = provider;
    this.#queueRestart();
  }

  /** The client this element uses (undefined until it has a token). */
  get client() {
    return this.#client;
  }

  connectedCallback() {
    if (!this.shadowRoot) this.#build();
    document.addEventListener('pointerdown', this.#onDocumentPointer, true);
    this.#queueRestart();
  }

  disconnectedCallback() {
    document.removeEventListener('pointerdown', this.#onDocumentPointer, true);
    this.#stop();
  }

  /** @param {string} name @param {string | null} before @param {string | null} after */
  attributeChangedCallback(name, before, after) {
    if (before === after || !this.shadowRoot) return;
    if (name === 'server' || name === 'token') this.#queueRestart();
    else if (name === 'badge') this.#renderBadge();
    else if (name === 'categories') this.#render();
  }

  /** Opens the dropdown. */
  show() {
    if (this.#isOpen() || !this.shadowRoot) return;
    this.#ui.panel.hidden = false;
    this.#ui.bell.setAttribute('aria-expanded', 'true');
    this.#render();
    const row = this.#activeId ? this.#rows.get(this.#activeId) : undefined;
    (row?.querySelector('button') ?? this.#ui.panel).focus();
    this.#markAllSeen();
  }

  /** Closes the dropdown (and returns focus to the bell unless `focusBell` is false). */
  hide(focusBell = true) {
    if (!this.#isOpen()) return;
    this.#ui.panel.hidden = true;
    this.#ui.bell.setAttribute('aria-expanded', 'false');
    this.#showView('inbox', false);
    if (focusBell) this.#ui.bell.focus();
  }

  #isOpen() {
    return this.shadowRoot !== null && this.#ui.panel?.hidden === false;
  }

  // ---- Lifecycle ----

  #build() {
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = TEMPLATE;
    const $ = (/** @type {string} */ selector) => /** @type {HTMLElement} */ (root.querySelector(selector));
    this.#ui = {
      bell: $('[part="bell"]'), badge: $('[part="badge"]'), panel: $('[part="panel"]'), status: $('[part="status"]'),
      statusLabel: $('.status .label'), markAll: $('[part="mark-all-read"]'), error: $('[part="error"]'),
      inbox: $('.view-inbox'), tabs: $('[part="tabs"]'), scroll: $('.scroll'), list: $('[part="list"]'),
      empty: $('[part="empty"]'), loading: $('[part="loading"]'), sentinel: $('.sentinel'),
      preferences: $('[part="preferences"]'), grid: $('.grid'), toasts: $('[part="toasts"]'),
    };
    const ui = this.#ui;
    ui.bell.addEventListener('click', () => (this.#isOpen() ? this.hide() : this.show()));
    ui.markAll.addEventListener('click', () => this.#markAllRead());
    $('[part="preferences-button"]').addEventListener('click', () => this.#showView('preferences', true));
    $('[part="preferences-back"]').addEventListener('click', () => this.#showView('inbox', true));
    ui.error.querySelector('button')?.addEventListener('click', () => this.#clearError());
    root.addEventListener('keydown', (event) => this.#onKeydown(/** @type {KeyboardEvent} */ (event)));
    ui.tabs.addEventListener('click', (event) => {
      const tab = /** @type {HTMLElement} */ (event.target).closest('[role="tab"]');
      if (tab instanceof HTMLElement) this.#selectTab(tab.dataset.category ?? '');
    });
    ui.list.addEventListener('focusin', (event) => {
      const row = /** @type {HTMLElement} */ (event.target).closest('li');
      if (row?.dataset.id && row.dataset.id !== this.#activeId) {
        this.#activeId = row.dataset.id;
        this.#renderRoving();
      }
    });
    ui.grid.addEventListener('change', (event) => this.#onSwitch(/** @type {HTMLInputElement} */ (event.target)));
    if (globalThis.IntersectionObserver) {
      this.#observer = new IntersectionObserver(
        (entries) => entries.some((entry) => entry.isIntersecting) && this.#loadMore(),
        { root: ui.scroll, rootMargin: '0px 0px 160px 0px' },
      );
      this.#observer.observe(ui.sentinel);
    } else {
      ui.scroll.addEventListener('scroll', () => {
        const s = ui.scroll;
        if (s.scrollTop + s.clientHeight >= s.scrollHeight - 160) this.#loadMore();
      });
    }
  }

  /** Attributes arrive one by one (and before `connectedCallback` on upgrade): restart once. */
  #queueRestart() {
    if (this.#restartQueued) return;
    this.#restartQueued = true;
    queueMicrotask(() => {
      this.#restartQueued = false;
      if (this.isConnected && this.shadowRoot) this.#restart();
    });
  }

  #stop() {
    this.#generation += 1;
    this.#inbox?.close();
    this.#inbox = undefined;
    this.#client = undefined;
    clearTimeout(this.#reloadTimer);
    this.#reloadTimer = undefined;
  }

  #restart() {
    this.#stop();
    this.#reset();
    this.#clearError();
    const provider = this.#tokenProvider;
    const token = provider ? () => provider() : this.getAttribute('token');
    if (!token) {
      this.#setStatus({ state: 'offline' }, 'Not signed in');
      return;
    }
    try {
      const server = this.getAttribute('server') || new URL(import.meta.url).origin;
      this.#client = new BelfryClient({ url: server, token });
    } catch (error) {
      this.#setStatus({ state: 'error' });
      this.#showError(error, 'status');
      return;
    }
    this.#reloadDelay = 0;
    this.#load();
  }

  /** Forgets every notification (a restart, or a subscription that cannot resume). */
  #reset() {
    this.#inbox?.close();
    this.#inbox = undefined;
    this.#byId.clear();
    this.#latest.clear();
    this.#liveAdded = [];
    this.#lists.clear();
    this.#preferences = undefined;
    this.#counts = { unread: 0, unseen: 0, byCategory: [] };
    if (this.shadowRoot) this.#render();
  }

  /** The first page of "All" and its counts, then the live subscription after its `liveCursor`. */
  async #load() {
    const client = this.#client;
    if (!client) return;
    const generation = this.#generation;
    this.#setStatus({ state: 'connecting' });
    const list = this.#list('');
    list.loading = true;
    this.#render();
    try {
      const page = await client.notifications({ first: this.#pageSize() });
      if (generation !== this.#generation) return;
      this.#reloadDelay = 0;
      this.#applyPage('', page);
      this.#setCounts(page.counts);
      this.#inbox = client.inbox({
        after: page.liveCursor,
        onChange: (change) => generation === this.#generation && this.#onChange(change),
        onStatus: (status) => generation === this.#generation && this.#setStatus(status),
        onError: (error) => generation === this.#generation && this.#onInboxError(error),
      });
    } catch (error) {
      if (generation !== this.#generation) return;
      const fatal = error instanceof BelfryError && ['UNAUTHENTICATED', 'FORBIDDEN'].includes(error.code) && !this.#tokenProvider;
      this.#showError(error, 'status');
      if (fatal) this.#setStatus({ state: 'error' });
      else this.#reloadLater();
    } finally {
      if (generation === this.#generation) {
        list.loading = false;
        this.#render();
      }
    }
  }

  #reloadLater() {
    this.#reloadDelay = Math.min(15_000, Math.max(500, this.#reloadDelay * 2));
    this.#setStatus({ state: 'offline', retryInMs: this.#reloadDelay });
    const generation = this.#generation;
    this.#reloadTimer = setTimeout(() => {
      if (generation !== this.#generation) return;
      this.#reset();
      this.#load();
    }, this.#reloadDelay);
  }

  /** The subscription is over (not a reconnect: those are the client's). @param {BelfryError} error */
  #onInboxError(error) {
    this.#inbox = undefined;
    this.#showError(error, 'status');
    if (this.#client?.status?.state !== 'error') this.#reloadLater();
  }

  #pageSize() {
    const size = Number.parseInt(this.getAttribute('page-size') ?? '', 10);
    return size > 0 && size <= 100 ? size : 20;
  }

  // ---- Model ----

  /** @param {string} category */
  #list(category) {
    let list = this.#lists.get(category);
    if (!list) {
      list = { ids: [], endCursor: null, hasNext: false, loading: false, loaded: false };
      this.#lists.set(category, list);
    }
    return list;
  }

  /**
   * Adds a page to a tab's list. A page may be older or newer than the live changes already
   * applied: a known notification keeps its live state, an unknown one gets the latest state a
   * live change gave it; any replay still to come ends at the true state either way.
   * @param {string} category @param {NotificationPage} page
   */
  #applyPage(category, page) {
    const list = this.#list(category);
    const ids = page.notifications.map((n) => this.#remember(n));
    if (!list.loaded) {
      // Live arrivals this page was read too early to include are newer than all of it.
      const fresh = this.#liveAdded.filter((id) => !ids.includes(id) && this.#inTab(id, category));
      list.ids = [...fresh, ...ids];
      list.loaded = true;
    } else {
      list.ids.push(...ids.filter((id) => !list.ids.includes(id)));
    }
    list.endCursor = page.pageInfo.endCursor;
    list.hasNext = page.pageInfo.hasNextPage;
  }

  /** @param {Notification} n @returns {string} its id */
  #remember(n) {
    if (!this.#byId.has(n.id)) {
      const state = this.#latest.get(n.id);
      this.#byId.set(n.id, state ? { ...n, ...flags(state) } : n);
    }
    this.#seenCategories.add(n.category);
    return n.id;
  }

  /** @param {string} id @param {string} category */
  #inTab(id, category) {
    const n = this.#byId.get(id);
    return n !== undefined && (category === '' || n.category === category);
  }

  /** @param {InboxChange} change */
  #onChange(change) {
    for (const n of change.added) {
      if (this.#byId.has(n.id)) continue;
      this.#remember(n);
      this.#liveAdded.unshift(n.id);
      for (const key of new Set(['', n.category])) {
        const list = this.#lists.get(key);
        if (list?.loaded && !list.ids.includes(n.id)) list.ids.unshift(n.id);
      }
      this.#emit('belfry:notification', n);
      if (!n.read && !n.archived) this.#toast(n);
    }
    for (const state of change.changed) this.#applyState(state);
    this.#setCounts(change.counts);
    this.#render();
    // Arrivals in an open inbox are in plain view: they are seen.
    if (change.added.length > 0 && this.#isOpen()) this.#markAllSeen();
  }

  /** @param {NotificationState} state */
  #applyState(state) {
    this.#latest.set(state.id, state);
    this.#seenCategories.add(state.category);
    const n = this.#byId.get(state.id);
    if (n) this.#byId.set(state.id, { ...n, ...flags(state) });
    if (state.read || state.archived) this.#dismissToast(state.id);
  }

  /** @param {Counts} counts */
  #setCounts(counts) {
    this.#counts = counts;
    for (const { category } of counts.byCategory) this.#seenCategories.add(category);
  }

  /** Tab categories: the `categories` attribute in its order, then every other one seen, by name. */
  #categories() {
    const listed = (this.getAttribute('categories') ?? '').split(',').map((c) => c.trim()).filter(Boolean);
    const others = [...this.#seenCategories].filter((c) => !listed.includes(c)).sort();
    return [...new Set([...listed, ...others])];
  }

  /** The current tab's notifications, newest first. */
  #visible() {
    return (this.#lists.get(this.#tab)?.ids ?? [])
      .flatMap((id) => {
        const n = this.#byId.get(id);
        return n && !n.archived && (this.#tab === '' || n.category === this.#tab) ? [n] : [];
      });
  }

  // ---- Actions ----

  /**
   * Applies flags at once and sends the mutation; on failure puts them back and says why.
   * @param {string} id @param {Partial<NotificationState>} change
   * @param {(client: BelfryClient) => Promise<Notification>} mutation
   */
  async #optimistic(id, change, mutation) {
    const client = this.#client;
    const before = this.#byId.get(id);
    if (!client || !before) return;
    this.#byId.set(id, { ...before, ...change });
    this.#render();
    try {
      const after = await mutation(client);
      const current = this.#byId.get(id);
      if (current) this.#byId.set(id, { ...current, ...flags(after) });
    } catch (error) {
      const current = this.#byId.get(id);
      if (current) this.#byId.set(id, { ...current, ...flags(before) });
      this.#showError(error, 'action');
    }
    this.#render();
  }

  /** An item or toast was clicked: `belfry:open`, mark read, then follow its link. @param {Notification} n */
  async #activate(n) {
    const follow = this.#emit('belfry:open', n, true);
    const read = n.read ? Promise.resolve() : this.#optimistic(n.id, { read: true, seen: true }, (c) => c.markRead(n.id));
    const url = safeUrl(n.actionUrl);
    if (!follow || !url) return;
    // Wait (briefly) so the read is recorded before the page goes away.
    await Promise.race([read, new Promise((resolve) => setTimeout(resolve, 2000))]);
    this.hide(false);
    globalThis.location.assign(url);
  }

  /** @param {Notification} n */
  #toggleRead(n) {
    this.#optimistic(n.id, n.read ? { read: false } : { read: true, seen: true }, (c) =>
      n.read ? c.markUnread(n.id) : c.markRead(n.id),
    );
  }

  /** @param {Notification} n */
  #archive(n) {
    // Keep the keyboard in the list: the next row (or the previous) takes focus.
    const ids = this.#visible().map((v) => v.id);
    const index = ids.indexOf(n.id);
    const hadFocus = this.#rows.get(n.id)?.contains(this.shadowRoot?.activeElement ?? null);
    this.#activeId = ids[index + 1] ?? ids[index - 1] ?? null;
    this.#optimistic(n.id, { archived: true }, (c) => c.archive(n.id));
    if (hadFocus) this.#focusActive();
  }

  async #markAllRead() {
    const client = this.#client;
    const visible = this.#visible();
    if (!client || visible.length === 0) return;
    const before = visible.filter((n) => !n.read);
    for (const n of before) this.#byId.set(n.id, { ...n, read: true, seen: true });
    this.#render();
    try {
      const result = await client.markAllRead({ category: this.#tab || null, upTo: visible[0].cursor });
      this.#setCounts(result.counts);
    } catch (error) {
      for (const n of before) {
        const current = this.#byId.get(n.id);
        if (current) this.#byId.set(n.id, { ...current, ...flags(n) });
      }
      this.#showError(error, 'action');
    }
    this.#render();
  }

  /** Opening the inbox: everything up to the newest notification it shows is seen. */
  async #markAllSeen() {
    const client = this.#client;
    const newest = (this.#lists.get('')?.ids ?? []).map((id) => this.#byId.get(id)).find((n) => n);
    if (!client || !newest || this.#counts.unseen === 0) return;
    const generation = this.#generation;
    try {
      const result = await client.markAllSeen({ upTo: newest.cursor });
      if (generation === this.#generation) this.#setCounts(result.counts);
    } catch (error) {
      if (generation === this.#generation) this.#showError(error, 'action');
    }
    if (generation === this.#generation) this.#render();
  }

  /** @param {string} category */
  #selectTab(category) {
    if (category !== this.#tab) {
      this.#tab = category;
      this.#activeId = null;
      this.#ui.scroll.scrollTop = 0;
    }
    this.#render();
    if (!this.#list(category).loaded) this.#loadPage(category);
  }

  #loadMore() {
    const list = this.#lists.get(this.#tab);
    if (this.#isOpen() && list?.loaded && list.hasNext) this.#loadPage(this.#tab);
  }

  /** The first page of a tab, or its next one. @param {string} category */
  async #loadPage(category) {
    const client = this.#client;
    const list = this.#list(category);
    if (!client || list.loading) return;
    const generation = this.#generation;
    list.loading = true;
    this.#render();
    try {
      const after = list.loaded ? list.endCursor : null;
      const page = await client.notifications({ first: this.#pageSize(), after, category: category || null });
      if (generation !== this.#generation) return;
      this.#applyPage(category, page);
    } catch (error) {
      if (generation === this.#generation) this.#showError(error, 'action');
    } finally {
      if (generation === this.#generation) {
        list.loading = false;
        this.#render();
        // Re-observing fires again if the sentinel is still in view (a short page).
        if (this.#observer) {
          this.#observer.unobserve(this.#ui.sentinel);
          this.#observer.observe(this.#ui.sentinel);
        }
      }
    }
  }

  /** @param {'inbox' | 'preferences'} view @param {boolean} focus */
  #showView(view, focus) {
    const preferences = view === 'preferences';
    this.#ui.preferences.hidden = !preferences;
    this.#ui.inbox.hidden = preferences;
    this.#ui.markAll.hidden = preferences;
    if (preferences) this.#loadPreferences();
    if (!focus) return;
    const target = preferences ? '[part="preferences-back"]' : '[part="preferences-button"]';
    /** @type {HTMLElement | null | undefined} */ (this.shadowRoot?.querySelector(target))?.focus();
  }

  async #loadPreferences() {
    const client = this.#client;
    if (!client) return;
    const generation = this.#generation;
    this.#ui.grid.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
    try {
      const preferences = await client.preferences();
      if (generation !== this.#generation) return;
      this.#preferences = new Map();
      for (const p of preferences) {
        this.#preferences.set(`${p.category}/${p.channel}`, p.enabled);
        this.#seenCategories.add(p.category);
      }
      this.#renderPreferences();
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#ui.grid.replaceChildren();
      this.#showError(error, 'action');
    }
  }

  /** @param {HTMLInputElement} input */
  async #onSwitch(input) {
    const client = this.#client;
    const { category, channel } = input.dataset;
    if (!client || !category || !channel) return;
    const enabled = input.checked;
    try {
      const saved = await client.updatePreferences([{ category, channel: /** @type {Channel} */ (channel), enabled }]);
      this.#preferences = new Map(saved.map((p) => [`${p.category}/${p.channel}`, p.enabled]));
    } catch (error) {
      // Put the switch back unless the user has flipped it again meanwhile.
      if (input.checked === enabled) input.checked = !enabled;
      this.#showError(error, 'action');
    }
  }

  // ---- Events, status, errors ----

  /** @param {string} type @param {unknown} detail @param {boolean} [cancelable] @returns {boolean} not prevented */
  #emit(type, detail, cancelable = false) {
    return this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true, cancelable }));
  }

  /** @param {Status} status @param {string} [text] */
  #setStatus(status, text) {
    const ui = this.#ui;
    if (!ui.status) return;
    const seconds = status.retryInMs === undefined ? 0 : Math.max(1, Math.round(status.retryInMs / 1000));
    const label =
      text ??
      { live: 'Live', connecting: 'Connecting…', offline: seconds ? `Offline, retrying in ${seconds} s` : 'Offline', error: 'Disconnected' }[
        status.state
      ];
    ui.status.dataset.state = status.state;
    ui.status.title = label;
    ui.statusLabel.textContent = label;
    if (status.state === 'live' && this.#errorKind === 'status') this.#clearError();
    if (status.state === 'error' && status.error) this.#showError(status.error, 'status');
    this.#emit('belfry:status', status);
  }

  /** @param {unknown} error @param {'status' | 'action'} kind */
  #showError(error, kind) {
    const message = error instanceof Error ? error.message : String(error);
    const ui = this.#ui;
    if (!ui.error) return;
    /** @type {HTMLElement} */ (ui.error.firstElementChild).textContent =
      kind === 'status' ? `Notifications unavailable: ${message}` : `Something went wrong: ${message}`;
    ui.error.hidden = false;
    this.#errorKind = kind;
  }

  #clearError() {
    if (this.#ui.error) this.#ui.error.hidden = true;
    this.#errorKind = null;
  }

  // ---- Keyboard ----

  /** @param {KeyboardEvent} event */
  #onKeydown(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    if (event.key === 'Escape' && this.#isOpen()) {
      event.preventDefault();
      this.hide(true);
      return;
    }
    const moves = { ArrowDown: 1, ArrowUp: -1, ArrowRight: 1, ArrowLeft: -1, Home: -Infinity, End: Infinity };
    const move = moves[/** @type {keyof typeof moves} */ (event.key)];
    if (move === undefined) return;
    if (target.getAttribute('role') === 'tab' && !event.key.startsWith('ArrowU') && !event.key.startsWith('ArrowD')) {
      const categories = ['', ...this.#categories()];
      const rtl = getComputedStyle(this).direction === 'rtl' && Math.abs(move) === 1 ? -1 : 1;
      const next = categories[this.#step(categories.indexOf(this.#tab), move * rtl, categories.length)];
      event.preventDefault();
      this.#selectTab(next);
      this.#tabs.get(next)?.focus();
    } else if (target.closest('[part="list"]') && (event.key.startsWith('ArrowU') || event.key.startsWith('ArrowD') || Math.abs(move) === Infinity)) {
      const ids = this.#visible().map((n) => n.id);
      if (ids.length === 0) return;
      event.preventDefault();
      const index = this.#step(ids.indexOf(this.#activeId ?? ''), move, ids.length);
      this.#activeId = ids[index];
      this.#renderRoving();
      this.#focusActive();
      if (index === ids.length - 1) this.#loadMore();
    }
  }

  /** @param {number} index @param {number} move @param {number} length */
  #step(index, move, length) {
    if (move === -Infinity) return 0;
    if (move === Infinity) return length - 1;
    return Math.min(length - 1, Math.max(0, index + move));
  }

  #focusActive() {
    const row = this.#activeId ? this.#rows.get(this.#activeId) : undefined;
    row?.querySelector('button')?.focus();
  }

  // ---- Rendering ----

  #render() {
    if (!this.#ui.list) return;
    this.#renderBadge();
    this.#renderTabs();
    this.#renderList();
    if (!this.#ui.preferences.hidden && this.#preferences) this.#renderPreferences();
  }

  #renderBadge() {
    const mode = this.getAttribute('badge') === 'unread' ? 'unread' : 'unseen';
    const count = this.#counts[mode];
    this.#ui.badge.textContent = count > 99 ? '99+' : String(count);
    this.#ui.badge.hidden = count === 0;
    this.#ui.bell.setAttribute('aria-label', count === 0 ? 'Notifications' : `Notifications, ${count} ${mode}`);
  }

  #renderTabs() {
    const unread = new Map(this.#counts.byCategory.map((c) => [c.category, c.unread]));
    const categories = ['', ...this.#categories()];
    categories.forEach((category, index) => {
      let tab = this.#tabs.get(category);
      if (!tab) {
        tab = h('button', { part: 'tab', class: 'tab', type: 'button', role: 'tab', 'data-category': category, id: `tab-${index}` },
          category || 'All', h('span', { part: 'tab-count', class: 'tab-count' }));
        this.#tabs.set(category, tab);
      }
      const selected = category === this.#tab;
      const count = category === '' ? this.#counts.unread : unread.get(category) ?? 0;
      tab.setAttribute('aria-selected', String(selected));
      tab.setAttribute('part', selected ? 'tab selected' : 'tab');
      tab.tabIndex = selected ? 0 : -1;
      const badge = /** @type {HTMLElement} */ (tab.lastElementChild);
      badge.textContent = String(count);
      badge.hidden = count === 0;
      tab.setAttribute('aria-label', `${category || 'All'}${count ? `, ${count} unread` : ''}`);
      if (this.#ui.tabs.children[index] !== tab) this.#ui.tabs.insertBefore(tab, this.#ui.tabs.children[index] ?? null);
      if (selected) this.#ui.scroll.setAttribute('aria-labelledby', tab.id);
    });
  }

  #renderList() {
    const ui = this.#ui;
    const visible = this.#visible();
    const list = this.#lists.get(this.#tab);
    if (!visible.some((n) => n.id === this.#activeId)) this.#activeId = visible[0]?.id ?? null;
    const keep = new Set(visible.map((n) => n.id));
    for (const [id, row] of this.#rows) {
      if (!keep.has(id)) {
        row.remove();
        this.#rows.delete(id);
      }
    }
    visible.forEach((n, index) => {
      const row = this.#rows.get(n.id) ?? this.#createRow(n.id);
      this.#updateRow(row, n);
      // Move only what is out of place, so a focused row keeps its focus.
      if (ui.list.children[index] !== row) ui.list.insertBefore(row, ui.list.children[index] ?? null);
    });
    this.#renderRoving();
    ui.loading.hidden = !list?.loading;
    ui.empty.hidden = visible.length > 0 || !list?.loaded || list.loading || list.hasNext;
    /** @type {HTMLButtonElement} */ (ui.markAll).disabled = !visible.some((n) => !n.read);
  }

  #renderRoving() {
    for (const [id, row] of this.#rows) {
      for (const button of row.querySelectorAll('button')) button.tabIndex = id === this.#activeId ? 0 : -1;
    }
  }

  /** @param {string} id */
  #createRow(id) {
    const open = h('button', { part: 'item-open', class: 'open', type: 'button' });
    const toggle = h('button', { part: 'item-toggle-read', class: 'icon', type: 'button' });
    const archive = h('button', { part: 'item-archive', class: 'icon', type: 'button', 'aria-label': 'Archive', title: 'Archive' });
    archive.innerHTML = ICONS.archive;
    const row = h('li', { part: 'item', class: 'item', 'data-id': id }, open, h('div', { class: 'actions' }, toggle, archive));
    const current = () => this.#byId.get(id);
    open.addEventListener('click', () => {
      const n = current();
      if (n) this.#activate(n);
    });
    toggle.addEventListener('click', () => {
      const n = current();
      if (n) this.#toggleRead(n);
    });
    archive.addEventListener('click', () => {
      const n = current();
      if (n) this.#archive(n);
    });
    this.#rows.set(id, row);
    return row;
  }

  /** @param {HTMLLIElement} row @param {Notification} n */
  #updateRow(row, n) {
    const signature = JSON.stringify([n.read, n.seen, n.title, n.body, n.priority, n.sentAt]);
    if (row.dataset.signature === signature) return;
    row.dataset.signature = signature;
    Object.assign(row.dataset, { read: String(n.read), seen: String(n.seen), priority: n.priority, category: n.category });
    row.setAttribute('part', ['item', n.read ? 'read' : 'unread', n.priority === 'URGENT' || n.priority === 'HIGH' ? `priority-${n.priority.toLowerCase()}` : '']
      .filter(Boolean).join(' '));
    const [open, actions] = /** @type {[HTMLElement, HTMLElement]} */ (/** @type {unknown} */ ([...row.children]));
    open.replaceChildren(...this.#content(n, 'item'));
    const toggle = /** @type {HTMLElement} */ (actions.firstElementChild);
    toggle.innerHTML = n.read ? ICONS.unread : ICONS.read;
    toggle.setAttribute('aria-label', n.read ? 'Mark as unread' : 'Mark as read');
    toggle.title = toggle.getAttribute('aria-label') ?? '';
  }

  /** The inside of an item's or toast's open button. @param {Notification} n @param {'item' | 'toast'} kind */
  #content(n, kind) {
    const icon = n.icon ? (safeUrl(n.icon) ? h('img', { class: 'thumb', src: safeUrl(n.icon) ?? '', alt: '' }) : h('span', { class: 'thumb', 'aria-hidden': 'true' }, n.icon)) : null;
    const loud = n.priority === 'HIGH' || n.priority === 'URGENT';
    const time = h('time', { datetime: n.sentAt, title: new Date(n.sentAt).toLocaleString() }, ago(n.sentAt));
    return /** @type {HTMLElement[]} */ ([
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      icon,
      h('span', { class: 'text' },
        h('span', { class: 'sr' }, [n.read || kind === 'toast' ? '' : 'Unread.', loud ? `${n.priority === 'URGENT' ? 'Urgent' : 'High priority'}.` : ''].join(' ')),
        h('span', { part: `${kind}-title`, class: 'title' }, n.title),
        n.body ? h('span', { part: `${kind}-body`, class: 'body' }, n.body) : null,
        h('span', { class: 'meta' },
          loud ? h('span', { class: `flag ${n.priority}`, 'aria-hidden': 'true' }, n.priority === 'URGENT' ? 'Urgent' : 'High') : null,
          h('span', { class: 'category' }, n.category), time)),
    ].filter(Boolean));
  }

  #renderPreferences() {
    const preferences = this.#preferences ?? new Map();
    const focused = /** @type {HTMLElement | null} */ (this.shadowRoot?.activeElement ?? null);
    const focusKey = focused?.dataset.category ? `${focused.dataset.category}/${focused.dataset.channel}` : null;
    const head = h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'sr' }, 'Category')),
      ...CHANNELS.map((channel) => h('th', { scope: 'col' }, CHANNEL_LABELS[channel])));
    const rows = this.#categories().map((category) =>
      h('tr', {}, h('th', { scope: 'row' }, category), ...CHANNELS.map((channel) => {
        const key = `${category}/${channel}`;
        const input = h('input', { type: 'checkbox', role: 'switch', part: 'switch', 'data-category': category, 'data-channel': channel,
          'aria-label': `${category}: ${CHANNEL_LABELS[channel]}` });
        input.checked = preferences.get(key) ?? true;
        return h('td', {}, input);
      })));
    this.#ui.grid.replaceChildren(h('table', { part: 'preferences-table' }, h('thead', {}, head), h('tbody', {}, ...rows)));
    if (focusKey) {
      const [category, channel] = focusKey.split('/');
      /** @type {HTMLElement | null} */ (this.#ui.grid.querySelector(`[data-category="${CSS.escape(category)}"][data-channel="${channel}"]`))?.focus();
    }
  }

  // ---- Toasts ----

  /** @param {Notification} n */
  #toast(n) {
    if (this.hasAttribute('no-toasts') || this.#toasts.has(n.id) || !this.#ui.toasts) return;
    while (this.#toasts.size >= MAX_TOASTS) {
      const ids = [...this.#toasts.keys()];
      // The oldest goes first, urgent ones last.
      const victim = ids.find((id) => this.#toasts.get(id)?.element.dataset.priority !== 'URGENT') ?? ids[0];
      this.#dismissToast(victim);
    }
    const urgent = n.priority === 'URGENT';
    const open = h('button', { part: 'toast-open', class: 'open', type: 'button' }, ...this.#content(n, 'toast'));
    const dismiss = h('button', { part: 'toast-dismiss', class: 'icon', type: 'button', 'aria-label': 'Dismiss' });
    dismiss.innerHTML = ICONS.close;
    const element = h('div', { part: urgent ? 'toast urgent' : 'toast', class: 'toast', 'data-id': n.id, 'data-priority': n.priority, role: urgent ? 'alert' : false }, open, dismiss);
    open.addEventListener('click', () => {
      this.#dismissToast(n.id);
      this.#activate(this.#byId.get(n.id) ?? n);
    });
    dismiss.addEventListener('click', () => this.#dismissToast(n.id));
    const toast = { element, remaining: TOAST_MS, started: 0, timer: /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined) };
    const run = () => {
      toast.started = Date.now();
      toast.timer = setTimeout(() => this.#dismissToast(n.id), toast.remaining);
    };
    const pause = () => {
      if (toast.timer === undefined) return;
      clearTimeout(toast.timer);
      toast.timer = undefined;
      toast.remaining -= Date.now() - toast.started;
    };
    if (!urgent) {
      element.addEventListener('pointerenter', pause);
      element.addEventListener('focusin', pause);
      element.addEventListener('pointerleave', () => !element.contains(this.shadowRoot?.activeElement ?? null) && run());
      element.addEventListener('focusout', (event) => !element.contains(/** @type {Node | null} */ (event.relatedTarget)) && !element.matches(':hover') && run());
      run();
    }
    this.#toasts.set(n.id, toast);
    this.#ui.toasts.append(element);
  }

  /** @param {string} id */
  #dismissToast(id) {
    const toast = this.#toasts.get(id);
    if (!toast) return;
    clearTimeout(toast.timer);
    toast.element.remove();
    this.#toasts.delete(id);
  }
}

if (globalThis.customElements && !globalThis.customElements.get('belfry-inbox')) {
  globalThis.customElements.define('belfry-inbox', BelfryInbox);
}
