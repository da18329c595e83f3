// BelfryClient against a fake WebSocket, fake fetch and fake timers: no network, no sleeps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BelfryClient, BelfryError } from '../belfry-client.js';

/** Lets pending promise callbacks (token resolution) run. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A scriptable server end of a graphql-transport-ws socket. */
class FakeSocket {
  /** @param {string} url @param {string} protocol */
  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    /** @type {any[]} */
    this.sent = [];
    /** @type {{ code?: number, reason?: string } | null} */
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
  }
  send(data) {
    assert.equal(this.readyState, 1, 'sent on a socket that is not open');
    this.sent.push(JSON.parse(data));
  }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // Server side.
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  ofType(type) {
    return this.sent.filter((m) => m.type === type);
  }
}

/** A client wired to fakes; `retries()` are the pending reconnect timers. */
function setup({ token = 'jwt-1', fetch } = {}) {
  /** @type {FakeSocket[]} */
  const sockets = [];
  const timers = [];
  const client = new BelfryClient({
    url: 'https://belfry.test/',
    token,
    fetch,
    random: () => 0.5,
    WebSocket: class extends FakeSocket {
      constructor(url, protocol) {
        super(url, protocol);
        sockets.push(this);
      }
    },
    setTimeout: (fn, ms) => {
      const timer = { fn, ms, done: false };
      timers.push(timer);
      return timer;
    },
    clearTimeout: (timer) => {
      if (timer) timer.done = true;
    },
  });
  const pending = () => timers.filter((t) => !t.done);
  const fire = (timer) => {
    timer.done = true;
    timer.fn();
  };
  // The ack and ping timeouts are 10 s, the quiet timer 20 s; every other timer is a retry or a resume.
  const retries = () => pending().filter((t) => t.ms !== 10_000 && t.ms !== 20_000);
  return { client, sockets, timers, pending, retries, fire };
}

/** Opens an inbox subscription and brings the socket to `connection_ack`. */
async function liveInbox(options = {}) {
  const env = setup(options);
  const changes = [];
  const statuses = [];
  const errors = [];
  const handle = env.client.inbox({
    after: 'live-0',
    onChange: (c) => changes.push(c),
    onStatus: (s) => statuses.push(s),
    onError: (e) => errors.push(e),
  });
  await flush();
  const socket = env.sockets[0];
  socket.open();
  socket.receive({ type: 'connection_ack' });
  return { ...env, handle, socket, changes, statuses, errors };
}

const counts = (unread = 0) => ({ unread, unseen: unread, byCategory: [] });
const notification = (id) => ({
  id, category: 'general', priority: 'NORMAL', critical: false, title: `Title ${id}`, body: '', data: {},
  actionUrl: null, icon: null, sentAt: '2024-01-01T00:00:00Z', seen: false, read: false, archived: false, cursor: `n-${id}`,
});
/** A `next` message carrying one inbox change. */
const change = (opId, cursor, { added = [], changed = [], unread = 0 } = {}) => ({
  id: opId, type: 'next', payload: { data: { inbox: { cursor, added, changed, counts: counts(unread) } } },
});

test('the socket url is derived from the server url and speaks graphql-transport-ws', async () => {
  const { client, sockets } = setup();
  client.inbox({});
  await flush();
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].url, 'wss://belfry.test/graphql');
  assert.equal(sockets[0].protocol, 'graphql-transport-ws');
  assert.equal(client.url, 'https://belfry.test/graphql');
  assert.equal(new BelfryClient({ url: 'http://localhost:8080/graphql', token: 't' }).url, 'http://localhost:8080/graphql');
});

test('connection_init carries the token and nothing is subscribed before the ack', async () => {
  const { client, sockets } = setup({ token: 'secret-jwt' });
  client.inbox({ after: 'live-0' });
  await flush();
  const socket = sockets[0];
  socket.open();
  assert.deepEqual(socket.sent, [{ type: 'connection_init', payload: { Authorization: 'Bearer secret-jwt' } }]);
  socket.receive({ type: 'connection_ack' });
  const [subscribe] = socket.ofType('subscribe');
  assert.ok(subscribe, 'subscribes after the ack');
  assert.match(subscribe.payload.query, /inbox\(after: \$after\)/);
  assert.deepEqual(subscribe.payload.variables, { after: 'live-0' });
});

test('a next message reaches onChange and the status goes live', async () => {
  const { socket, changes, statuses } = await liveInbox();
  const opId = socket.ofType('subscribe')[0].id;
  socket.receive(change(opId, 'c1', { added: [notification('a')], unread: 1 }));
  assert.equal(changes.length, 1);
  assert.equal(changes[0].cursor, 'c1');
  assert.deepEqual(changes[0].added.map((n) => n.id), ['a']);
  assert.equal(changes[0].counts.unread, 1);
  assert.deepEqual(statuses.map((s) => s.state), ['connecting', 'live']);
});

test('a server ping is answered with a pong', async () => {
  const { socket } = await liveInbox();
  socket.receive({ type: 'ping' });
  assert.equal(socket.ofType('pong').length, 1);
});

test('a dropped socket reconnects with growing backoff and resumes after the last cursor', async () => {
  const { socket, sockets, retries, fire, statuses } = await liveInbox();
  const opId = socket.ofType('subscribe')[0].id;
  socket.receive(change(opId, 'c1', { added: [notification('a')] }));
  socket.receive(change(opId, 'c2', { changed: [{ id: 'a', category: 'general', seen: true, read: true, archived: false }] }));

  socket.drop(1006);
  assert.equal(sockets.length, 1, 'waits before reconnecting');
  assert.deepEqual(statuses.at(-1), { state: 'offline', attempt: 1, retryInMs: 188 });
  assert.equal(retries().length, 1);
  fire(retries()[0]);
  await flush();
  assert.equal(sockets.length, 2);

  // Refused again: the delay doubles.
  sockets[1].drop(1006);
  assert.deepEqual(statuses.at(-1), { state: 'offline', attempt: 2, retryInMs: 375 });
  fire(retries()[0]);
  await flush();
  const third = sockets[2];
  third.open();
  assert.equal(third.ofType('subscribe').length, 0);
  third.receive({ type: 'connection_ack' });
  assert.deepEqual(third.ofType('subscribe')[0].payload.variables, { after: 'c2' });
  assert.equal(statuses.at(-1).state, 'live');

  // A successful ack resets the backoff.
  third.drop(1001, 'going away');
  assert.deepEqual(statuses.at(-1), { state: 'offline', attempt: 1, retryInMs: 188 });
});

test('the backoff delay is capped', async () => {
  const { sockets, retries, fire, statuses, socket } = await liveInbox();
  socket.drop(1006);
  for (let i = 0; i < 12; i++) {
    fire(retries()[0]);
    await flush();
    sockets.at(-1).drop(1006);
  }
  const delays = statuses.filter((s) => s.state === 'offline').map((s) => s.retryInMs);
  assert.equal(Math.max(...delays), 11_250, '15 s ceiling, half of it jitter');
});

test('an added notification seen twice is delivered once, and a repeated cursor is ignored', async () => {
  const { socket, changes } = await liveInbox();
  const opId = socket.ofType('subscribe')[0].id;
  socket.receive(change(opId, 'c1', { added: [notification('a')], unread: 1 }));
  socket.receive(change(opId, 'c1', { added: [notification('a')], unread: 1 }));
  socket.receive(change(opId, 'c2', { added: [notification('a'), notification('b')], unread: 2 }));
  assert.deepEqual(changes.map((c) => c.cursor), ['c1', 'c2']);
  assert.deepEqual(changes[1].added.map((n) => n.id), ['b']);
  assert.equal(changes[1].counts.unread, 2, 'counts still arrive with a deduplicated change');
});

test('a RATE_LIMITED error resubscribes at once from the last cursor', async () => {
  const { socket, sockets, changes, errors } = await liveInbox();
  const opId = socket.ofType('subscribe')[0].id;
  socket.receive(change(opId, 'c7'));
  socket.receive({ id: opId, type: 'error', payload: [{ message: 'SLOW_SUBSCRIBER', extensions: { code: 'RATE_LIMITED' } }] });
  const subscribes = socket.ofType('subscribe');
  assert.equal(subscribes.length, 2);
  assert.notEqual(subscribes[1].id, opId);
  assert.deepEqual(subscribes[1].payload.variables, { after: 'c7' });
  assert.equal(sockets.length, 1, 'same socket');
  assert.deepEqual(errors, []);
  socket.receive(change(subscribes[1].id, 'c8'));
  assert.deepEqual(changes.map((c) => c.cursor), ['c7', 'c8']);
});

test('any other subscription error ends it, reports it and closes the unused socket', async () => {
  const { socket, errors, retries } = await liveInbox();
  const opId = socket.ofType('subscribe')[0].id;
  socket.receive({ id: opId, type: 'error', payload: [{ message: 'Unknown cursor', extensions: { code: 'BAD_USER_INPUT' } }] });
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof BelfryError);
  assert.equal(errors[0].code, 'BAD_USER_INPUT');
  assert.equal(socket.closedWith?.code, 1000);
  assert.equal(retries().length, 0);
});

test('a server complete on the inbox resumes shortly from the last cursor', async () => {
  const { socket, retries, fire } = await liveInbox();
  const opId = socket.ofType('subscribe')[0].id;
  socket.receive(change(opId, 'c3'));
  socket.receive({ id: opId, type: 'complete' });
  assert.equal(socket.ofType('subscribe').length, 1);
  fire(retries()[0]);
  assert.deepEqual(socket.ofType('subscribe')[1].payload.variables, { after: 'c3' });
});

test('4403 with a token function fetches a new token before reconnecting', async () => {
  let calls = 0;
  const { socket, sockets, retries, fire, statuses } = await liveInbox({ token: async () => `jwt-${++calls}` });
  assert.equal(socket.sent[0].payload.Authorization, 'Bearer jwt-1');
  socket.drop(4403, 'token expired');
  assert.equal(statuses.at(-1).state, 'offline');
  fire(retries()[0]);
  await flush();
  sockets[1].open();
  assert.equal(sockets[1].sent[0].payload.Authorization, 'Bearer jwt-2');
  sockets[1].receive({ type: 'connection_ack' });
  assert.equal(statuses.at(-1).state, 'live');
});

test('4403 again right after a fresh token stops: the token source is stuck', async () => {
  const { socket, sockets, retries, fire, statuses, errors } = await liveInbox({ token: async () => 'always-bad' });
  socket.drop(4403, 'token expired');
  fire(retries()[0]);
  await flush();
  sockets[1].open();
  sockets[1].drop(4403, 'token expired');
  assert.equal(statuses.at(-1).state, 'error');
  assert.equal(errors.length, 1);
  assert.equal(retries().length, 0);
});

test('4403 with a fixed token is final: error status and no reconnect loop', async () => {
  const { client, socket, sockets, retries, statuses, errors } = await liveInbox({ token: 'fixed' });
  socket.drop(4403, 'token expired');
  assert.equal(statuses.at(-1).state, 'error');
  assert.equal(statuses.at(-1).error.code, 'UNAUTHENTICATED');
  assert.equal(statuses.at(-1).error.message, 'token expired');
  assert.equal(errors.length, 1);
  assert.equal(retries().length, 0);
  await flush();
  assert.equal(sockets.length, 1);
  assert.equal(client.status?.state, 'error');
});

test('subscriptions share one socket; close() completes and the last one closes it', async () => {
  const { client, sockets, socket, handle } = await liveInbox();
  const counts = [];
  const second = client.unreadCount({ onCounts: (c) => counts.push(c) });
  assert.equal(sockets.length, 1);
  const [inboxSub, countSub] = socket.ofType('subscribe');
  assert.match(countSub.payload.query, /unreadCount/);
  socket.receive({ id: countSub.id, type: 'next', payload: { data: { unreadCount: { unread: 3, unseen: 1, byCategory: [] } } } });
  assert.equal(counts[0].unread, 3);

  handle.close();
  assert.deepEqual(socket.ofType('complete'), [{ id: inboxSub.id, type: 'complete' }]);
  assert.equal(socket.closedWith, null, 'still in use');
  second.close();
  assert.deepEqual(socket.ofType('complete').at(-1), { id: countSub.id, type: 'complete' });
  assert.equal(socket.closedWith?.code, 1000);
  handle.close();
  assert.equal(socket.ofType('complete').length, 2, 'closing twice is harmless');
});

test('closing during a backoff wait cancels the reconnect', async () => {
  const { socket, sockets, retries, handle } = await liveInbox();
  socket.drop(1006);
  assert.equal(retries().length, 1);
  handle.close();
  assert.equal(retries().length, 0);
  await flush();
  assert.equal(sockets.length, 1);
});

test('an unacknowledged connection is given up after a timeout and retried', async () => {
  const { client, sockets, pending, fire } = setup();
  const statuses = [];
  client.inbox({ onStatus: (s) => statuses.push(s.state) });
  await flush();
  sockets[0].open();
  const ackTimer = pending().find((t) => t.ms === 10_000);
  assert.ok(ackTimer);
  fire(ackTimer);
  assert.equal(sockets[0].closedWith?.code, 4408);
  assert.equal(statuses.at(-1), 'offline');
});

test('a quiet connection is pinged, and replaced when the ping gets no answer', async () => {
  const { socket, sockets, pending, retries, fire, statuses, changes } = await liveInbox();
  const quiet = () => pending().find((t) => t.ms === 20_000);
  const first = quiet();
  assert.ok(first, 'a quiet timer runs once live');
  socket.receive(change('1', 'c-1', { added: [notification('a')] }));
  assert.equal(first.done, true, 'any message postpones the check');
  fire(/** @type {any} */ (quiet()));
  assert.equal(socket.ofType('ping').length, 1);
  const answer = pending().find((t) => t.ms === 10_000);
  assert.ok(answer, 'waits for the answer');
  fire(answer);
  assert.ok(socket.closedWith, 'the dead socket is closed');
  assert.equal(statuses.at(-1)?.state, 'offline');
  fire(retries()[0]);
  await flush();
  sockets[1].open();
  sockets[1].receive({ type: 'connection_ack' });
  const resubscribe = sockets[1].ofType('subscribe')[0];
  assert.equal(resubscribe.payload.variables.after, 'c-1', 'resumes after the last change');
  assert.equal(changes.length, 1);
});

test('a pong keeps the connection', async () => {
  const { socket, pending, fire, statuses } = await liveInbox();
  fire(/** @type {any} */ (pending().find((t) => t.ms === 20_000)));
  const answer = pending().find((t) => t.ms === 10_000);
  socket.receive({ type: 'pong' });
  assert.equal(answer?.done, true);
  assert.equal(socket.closedWith, null);
  assert.equal(statuses.at(-1)?.state, 'live');
});

/** A fetch that answers from a list of `[status, body]` and records requests. */
function fakeFetch(...answers) {
  const requests = [];
  const fetch = async (url, init) => {
    requests.push({ url, ...init, body: JSON.parse(init.body) });
    const next = answers.shift();
    if (next instanceof Error) throw next;
    const [status, body] = next;
    return { status, ok: status >= 200 && status < 300, json: async () => body };
  };
  return { fetch, requests };
}

test('query posts the document with the bearer token and returns data', async () => {
  const { fetch, requests } = fakeFetch([200, { data: { viewerId: 'ada' } }]);
  const { client } = setup({ token: 'jwt-q', fetch });
  assert.equal(await client.viewerId(), 'ada');
  assert.equal(requests[0].url, 'https://belfry.test/graphql');
  assert.equal(requests[0].method, 'POST');
  assert.equal(requests[0].headers.Authorization, 'Bearer jwt-q');
  assert.equal(requests[0].body.query, '{ viewerId }');
});

test('GraphQL errors become a BelfryError with the code and status', async () => {
  const { fetch } = fakeFetch([200, { errors: [{ message: 'No such notification', extensions: { code: 'NOT_FOUND' } }], data: null }]);
  const { client } = setup({ fetch });
  await assert.rejects(client.markRead('x'), (error) => {
    assert.ok(error instanceof BelfryError);
    assert.equal(error.code, 'NOT_FOUND');
    assert.equal(error.status, 200);
    assert.equal(error.message, 'No such notification');
    return true;
  });
});

test('a 401 with a fixed token is UNAUTHENTICATED, not retried', async () => {
  const { fetch, requests } = fakeFetch([401, { errors: [{ message: 'Token expired', extensions: { code: 'UNAUTHENTICATED' } }] }]);
  const { client } = setup({ token: 'old', fetch });
  await assert.rejects(client.counts(), { name: 'BelfryError', code: 'UNAUTHENTICATED', status: 401 });
  assert.equal(requests.length, 1);
});

test('a 401 with a token function retries once with a fresh token', async () => {
  const { fetch, requests } = fakeFetch(
    [401, { errors: [{ message: 'Token expired', extensions: { code: 'UNAUTHENTICATED' } }] }],
    [200, { data: { counts: counts(4) } }],
  );
  let calls = 0;
  const { client } = setup({ token: () => `jwt-${++calls}`, fetch });
  assert.equal((await client.counts()).unread, 4);
  assert.deepEqual(requests.map((r) => r.headers.Authorization), ['Bearer jwt-1', 'Bearer jwt-2']);
});

test('an unreachable server or a non-JSON answer is a BelfryError too', async () => {
  const { fetch } = fakeFetch(new TypeError('fetch failed'), [502, undefined]);
  const { client } = setup({ fetch });
  await assert.rejects(client.counts(), { code: 'NETWORK', status: 0 });
  await assert.rejects(client.counts(), { code: 'INTERNAL', status: 502 });
});

test('deliveryChannels() asks for the channels the server delivers on', async () => {
  const { fetch, requests } = fakeFetch([200, { data: { deliveryChannels: ['IN_APP', 'EMAIL'] } }]);
  const { client } = setup({ fetch });
  assert.deepEqual(await client.deliveryChannels(), ['IN_APP', 'EMAIL']);
  assert.equal(requests[0].body.query, '{ deliveryChannels }');
});

test('notifications() sends the filter and flattens the page', async () => {
  const page = {
    notifications: { edges: [{ cursor: 'n-a', node: notification('a') }], pageInfo: { hasNextPage: true, endCursor: 'n-a' }, liveCursor: 'L9' },
    counts: counts(1),
  };
  const { fetch, requests } = fakeFetch([200, { data: page }]);
  const { client } = setup({ fetch });
  const result = await client.notifications({ first: 5, after: 'n-z', category: 'billing' });
  assert.deepEqual(requests[0].body.variables, { first: 5, after: 'n-z', filter: { archived: false, unreadOnly: false, category: 'billing' } });
  assert.deepEqual(result.notifications.map((n) => n.id), ['a']);
  assert.equal(result.liveCursor, 'L9');
  assert.equal(result.pageInfo.endCursor, 'n-a');
  assert.equal(result.counts.unread, 1);
});

test('markAllRead passes the category and upTo cursor', async () => {
  const { fetch, requests } = fakeFetch([200, { data: { markAllRead: { changed: 2, counts: counts(0) } } }]);
  const { client } = setup({ fetch });
  const result = await client.markAllRead({ category: 'billing', upTo: 'n-a' });
  assert.deepEqual(requests[0].body.variables, { category: 'billing', upTo: 'n-a' });
  assert.match(requests[0].body.query, /markAllRead\(category: \$category, upTo: \$upTo\)/);
  assert.equal(result.changed, 2);
});

test('quietHours() reads them and setQuietHours() replaces them with the windows given', async () => {
  const hours = { windows: [{ days: ['SAT', 'SUN'], start: '22:00', end: '07:00' }], timeZone: 'UTC', quietUntil: null };
  const { fetch, requests } = fakeFetch([200, { data: { quietHours: hours } }], [200, { data: { setQuietHours: { ...hours, windows: [] } } }]);
  const { client } = setup({ fetch });
  assert.deepEqual(await client.quietHours(), hours);
  assert.match(requests[0].body.query, /quietHours \{ windows \{ days start end \} timeZone quietUntil \}/);
  assert.deepEqual((await client.setQuietHours([])).windows, []);
  assert.match(requests[1].body.query, /setQuietHours\(windows: \$windows\)/);
  assert.deepEqual(requests[1].body.variables, { windows: [] });
});

test('a refused quiet window is a BAD_USER_INPUT BelfryError with the server\'s reason', async () => {
  const message = 'each window names at least one day';
  const { fetch } = fakeFetch([200, { errors: [{ message, extensions: { code: 'BAD_USER_INPUT' } }], data: null }]);
  const { client } = setup({ fetch });
  await assert.rejects(client.setQuietHours([{ days: [], start: '22:00', end: '07:00' }]), { code: 'BAD_USER_INPUT', message });
});

test('digests() reads them and setDigest() sends one category and channel\'s schedule, null turning it off', async () => {
  const daily = { category: 'billing', channel: 'EMAIL', schedule: { frequency: 'DAILY', at: '09:00', day: null }, nextAt: '2024-06-04T09:00:00Z' };
  const { fetch, requests } = fakeFetch(
    [200, { data: { digests: { settings: [], timeZone: 'Europe/Paris' } } }],
    [200, { data: { setDigest: { settings: [daily], timeZone: 'Europe/Paris' } } }],
    [200, { data: { setDigest: { settings: [], timeZone: 'Europe/Paris' } } }],
  );
  const { client } = setup({ fetch });
  assert.deepEqual(await client.digests(), { settings: [], timeZone: 'Europe/Paris' });
  assert.match(requests[0].body.query, /digests \{ settings \{ category channel schedule \{ frequency at day \} nextAt \} timeZone \}/);
  assert.deepEqual((await client.setDigest('billing', 'EMAIL', { frequency: 'DAILY', at: '09:00' })).settings, [daily]);
  assert.match(requests[1].body.query, /setDigest\(category: \$category, channel: \$channel, schedule: \$schedule\)/);
  assert.match(requests[1].body.query, /\$schedule: DigestScheduleInput\)/, 'the schedule may be null');
  assert.deepEqual(requests[1].body.variables, { category: 'billing', channel: 'EMAIL', schedule: { frequency: 'DAILY', at: '09:00' } });
  assert.deepEqual((await client.setDigest('billing', 'EMAIL', null)).settings, []);
  assert.deepEqual(requests[2].body.variables, { category: 'billing', channel: 'EMAIL', schedule: null });
});

test('a refused digest is a BAD_USER_INPUT BelfryError with the server\'s reason', async () => {
  const message = 'a daily digest needs a time';
  const { fetch } = fakeFetch([200, { errors: [{ message, extensions: { code: 'BAD_USER_INPUT' } }], data: null }]);
  const { client } = setup({ fetch });
  await assert.rejects(client.setDigest('billing', 'EMAIL', { frequency: 'DAILY' }), { code: 'BAD_USER_INPUT', message });
});
