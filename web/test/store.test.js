// InboxStore, the model of <belfry-inbox>: pages and live changes in, lists and counts out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InboxStore } from '../belfry-store.js';

const counts = (unread = 0, byCategory = []) => ({ unread, unseen: unread, byCategory });
const notification = (id, extra = {}) => ({
  id, category: 'general', priority: 'NORMAL', critical: false, title: `Title ${id}`, body: '', data: {},
  actionUrl: null, icon: null, sentAt: '2024-01-01T00:00:00Z', seen: false, read: false, archived: false, cursor: `n-${id}`,
  ...extra,
});
/** A page as `BelfryClient.notifications()` returns it. */
const page = (notifications, { hasNextPage = false, unread = 0 } = {}) => ({
  notifications,
  pageInfo: { hasNextPage, endCursor: notifications.at(-1)?.cursor ?? null },
  liveCursor: 'live',
  counts: counts(unread),
});
/** A live change as `BelfryClient.inbox()` delivers it. */
const change = ({ added = [], changed = [], removed = [], unread = 0, byCategory = [] } = {}) => ({
  cursor: `c-${Math.random()}`, added, changed, removed, counts: counts(unread, byCategory),
});
const state = (id, flags, category = 'general') => ({ id, category, seen: false, read: false, archived: false, ...flags });
const ids = (notifications) => notifications.map((n) => n.id);

test('a first page is listed in its order, with where the next one starts', () => {
  const store = new InboxStore();
  assert.equal(store.list('').loaded, false);
  store.applyPage('', page([notification('c'), notification('b'), notification('a')], { hasNextPage: true }));
  assert.deepEqual(ids(store.visible('')), ['c', 'b', 'a']);
  const list = store.list('');
  assert.equal(list.loaded, true);
  assert.equal(list.hasNext, true);
  assert.equal(list.endCursor, 'n-a');
});

test('a next page is appended, without the ones already listed', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('d'), notification('c')], { hasNextPage: true }));
  // A notification arriving meanwhile pushes `c` onto the next page too.
  store.applyPage('', page([notification('c'), notification('b')]));
  assert.deepEqual(ids(store.visible('')), ['d', 'c', 'b']);
  assert.equal(store.list('').hasNext, false);
});

test('a live arrival goes on top of All and of its own tab, not of the others', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('a')]));
  store.applyPage('billing', page([notification('b', { category: 'billing' })]));
  store.applyPage('social', page([]));
  const added = store.applyChange(change({ added: [notification('new', { category: 'billing' })] }));
  assert.deepEqual(ids(added), ['new']);
  assert.deepEqual(ids(store.visible('')), ['new', 'a']);
  assert.deepEqual(ids(store.visible('billing')), ['new', 'b']);
  assert.deepEqual(ids(store.visible('social')), []);
});

test('a notification already listed by a page is not added again by a live change', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('b'), notification('a')]));
  const added = store.applyChange(change({ added: [notification('b'), notification('c')] }));
  assert.deepEqual(ids(added), ['c'], 'only the new one is reported (for events and toasts)');
  assert.deepEqual(ids(store.visible('')), ['c', 'b', 'a']);
});

test('the same live arrival twice is listed and reported once', () => {
  const store = new InboxStore();
  store.applyPage('', page([]));
  assert.deepEqual(ids(store.applyChange(change({ added: [notification('x')] }))), ['x']);
  assert.deepEqual(ids(store.applyChange(change({ added: [notification('x')] }))), []);
  assert.deepEqual(ids(store.visible('')), ['x']);
});

test('arrivals before a tab first loads are put above its first page, once', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('old', { category: 'billing' })]));
  store.applyChange(change({ added: [notification('b1', { category: 'billing' })] }));
  store.applyChange(change({ added: [notification('g1')] }));
  store.applyChange(change({ added: [notification('b2', { category: 'billing' })] }));
  // The billing page was read after b1 reached the server, before b2 did.
  store.applyPage('billing', page([notification('b1', { category: 'billing' }), notification('old', { category: 'billing' })]));
  assert.deepEqual(ids(store.visible('billing')), ['b2', 'b1', 'old']);
  assert.deepEqual(ids(store.visible('')), ['b2', 'g1', 'b1', 'old']);
});

test('an expired notification leaves every list it was in', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('b', { category: 'sales' }), notification('a')], { unread: 2 }));
  store.applyPage('sales', page([notification('b', { category: 'sales' })]));
  store.applyChange(change({ added: [notification('c', { category: 'sales' })], unread: 3 }));
  store.applyChange(change({ removed: ['b', 'c'], unread: 1 }));
  assert.deepEqual(ids(store.visible('')), ['a']);
  assert.deepEqual(ids(store.visible('sales')), []);
  assert.equal(store.get('b'), undefined);
  assert.equal(store.counts.unread, 1);
});

test('a live state change applies to a listed notification', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('a'), notification('b')]));
  store.applyChange(change({ changed: [state('a', { seen: true, read: true })] }));
  assert.equal(store.get('a')?.read, true);
  assert.equal(store.get('a')?.seen, true);
  assert.equal(store.get('b')?.read, false);
});

test('a page read before a live change does not undo it', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('a')], { hasNextPage: true }));
  store.applyChange(change({ changed: [state('a', { read: true })] }));
  // The next page was read before the change reached the server: its copy of `a` is stale.
  store.applyPage('', page([notification('a'), notification('z')]));
  assert.equal(store.get('a')?.read, true);
});

test('a page does not overwrite a notification already known, such as one just marked read', () => {
  const store = new InboxStore();
  store.applyPage('', page([]));
  store.applyChange(change({ added: [notification('a')] }));
  store.update('a', { read: true, seen: true });
  store.applyPage('general', page([notification('a')]));
  assert.equal(store.get('a')?.read, true);
  assert.deepEqual(ids(store.visible('general')), ['a']);
});

test('a change to a notification not loaded yet is applied when a page brings it', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('new')], { hasNextPage: true }));
  store.applyChange(change({ changed: [state('old', { read: true, seen: true })] }));
  store.applyPage('', page([notification('old')]));
  assert.equal(store.get('old')?.read, true);
  assert.equal(store.get('old')?.seen, true);
});

test('archived notifications are not shown; a tab shows only its category', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('a'), notification('b', { category: 'billing' }), notification('c', { archived: true })]));
  assert.deepEqual(ids(store.visible('')), ['a', 'b']);
  store.applyChange(change({ changed: [state('a', { archived: true })] }));
  assert.deepEqual(ids(store.visible('')), ['b']);
  store.applyPage('billing', page([notification('b', { category: 'billing' })]));
  assert.deepEqual(ids(store.visible('billing')), ['b']);
});

test('update sets flags and returns the notification before; unknown ids change nothing', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('a')]));
  const before = store.update('a', { read: true, seen: true });
  assert.equal(before?.read, false);
  assert.equal(store.get('a')?.read, true);
  // Putting it back, as after a failed mutation.
  store.update('a', { seen: before?.seen, read: before?.read, archived: before?.archived });
  assert.equal(store.get('a')?.read, false);
  assert.equal(store.update('nope', { read: true }), undefined);
  assert.equal(store.get('nope'), undefined);
});

test('newest is the first notification of All, whatever tab is loaded', () => {
  const store = new InboxStore();
  assert.equal(store.newest(), undefined);
  store.applyPage('billing', page([notification('b', { category: 'billing' })]));
  assert.equal(store.newest(), undefined, 'All is not loaded');
  store.applyPage('', page([notification('a'), notification('b', { category: 'billing' })]));
  store.applyChange(change({ added: [notification('c')] }));
  assert.equal(store.newest()?.id, 'c');
});

test('counts come from the last page or change; a tab counts its category', () => {
  const store = new InboxStore();
  store.applyPage('', page([]));
  store.setCounts(counts(3, [{ category: 'billing', unread: 2, unseen: 1 }, { category: 'general', unread: 1, unseen: 0 }]));
  assert.equal(store.unread(''), 3);
  assert.equal(store.unread('billing'), 2);
  assert.equal(store.unread('social'), 0);
  store.applyChange(change({ unread: 4, byCategory: [{ category: 'billing', unread: 4, unseen: 4 }] }));
  assert.equal(store.counts.unread, 4);
  assert.equal(store.unread('billing'), 4);
  assert.equal(store.unread('general'), 0);
});

test('categories: the listed ones in their order, then every one seen, by name', () => {
  const store = new InboxStore();
  assert.deepEqual(store.categories(), ['general']);
  store.applyPage('', page([notification('a', { category: 'social' })]));
  store.setCounts(counts(1, [{ category: 'billing', unread: 1, unseen: 1 }]));
  store.applyChange(change({ changed: [state('x', {}, 'alerts')] }));
  store.setPreferences([{ category: 'security', channel: 'EMAIL', enabled: false }]);
  assert.deepEqual(store.categories(), ['alerts', 'billing', 'general', 'security', 'social']);
  assert.deepEqual(store.categories(['social', 'zebra', 'general']), ['social', 'zebra', 'general', 'alerts', 'billing', 'security']);
});

test('a switch not set explicitly is on', () => {
  const store = new InboxStore();
  assert.equal(store.hasPreferences, false);
  assert.equal(store.enabled('billing', 'EMAIL'), true);
  store.setPreferences([{ category: 'billing', channel: 'EMAIL', enabled: false }, { category: 'billing', channel: 'SMS', enabled: true }]);
  assert.equal(store.hasPreferences, true);
  assert.equal(store.enabled('billing', 'EMAIL'), false);
  assert.equal(store.enabled('billing', 'SMS'), true);
  assert.equal(store.enabled('billing', 'PUSH'), true);
  store.setPreferences([]);
  assert.equal(store.enabled('billing', 'EMAIL'), true, 'the list the server returns replaces the switches');
});

test('the channels delivered on are unknown until set', () => {
  const store = new InboxStore();
  assert.equal(store.channels, undefined);
  store.setChannels(['IN_APP', 'WEBHOOK']);
  assert.deepEqual(store.channels, ['IN_APP', 'WEBHOOK']);
});

test('reset forgets notifications, lists, counts, switches and channels, not the categories seen', () => {
  const store = new InboxStore();
  store.applyPage('', page([notification('a', { category: 'billing' })]));
  store.applyChange(change({ added: [notification('b')], unread: 2 }));
  store.setPreferences([{ category: 'billing', channel: 'EMAIL', enabled: false }]);
  store.setChannels(['IN_APP', 'EMAIL']);
  store.reset();
  assert.equal(store.channels, undefined, 'a restart may be another server');
  assert.equal(store.get('a'), undefined);
  assert.deepEqual(store.visible(''), []);
  assert.equal(store.list('').loaded, false);
  assert.equal(store.counts.unread, 0);
  assert.equal(store.hasPreferences, false);
  assert.deepEqual(store.categories(), ['billing', 'general']);
  // Arrivals from before the reset are forgotten too: `b` arriving again is listed once.
  store.applyChange(change({ added: [notification('b')] }));
  store.applyPage('', page([notification('c')]));
  assert.deepEqual(ids(store.visible('')), ['b', 'c']);
});
