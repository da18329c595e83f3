// The element's pure helpers: relative times (kept current by a timer in the element) and links.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ago, safeUrl } from '../belfry-view.js';

const NOW = Date.parse('2024-06-01T12:00:00Z');
const before = (seconds) => new Date(NOW - seconds * 1000).toISOString();
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });

test('under 45 seconds either way is "now"', () => {
  assert.equal(ago(before(0), NOW), relative.format(0, 'second'));
  assert.equal(ago(before(44), NOW), relative.format(0, 'second'));
  assert.equal(ago(before(-30), NOW), relative.format(0, 'second'));
});

test('minutes, hours and days are rounded to the nearest', () => {
  assert.equal(ago(before(50), NOW), relative.format(-1, 'minute'));
  assert.equal(ago(before(3 * 60 + 20), NOW), relative.format(-3, 'minute'));
  assert.equal(ago(before(59 * 60), NOW), relative.format(-59, 'minute'));
  assert.equal(ago(before(2 * 3600 + 1200), NOW), relative.format(-2, 'hour'));
  assert.equal(ago(before(3 * 86400), NOW), relative.format(-3, 'day'));
  assert.equal(ago(before(-5 * 60), NOW), relative.format(5, 'minute'), 'a clock ahead of ours');
});

test('after a week it is the date', () => {
  const iso = before(8 * 86400);
  assert.equal(ago(iso, NOW), new Date(iso).toLocaleDateString());
});

test('the same timestamp reads differently as the clock moves on', () => {
  const iso = before(10);
  assert.equal(ago(iso, NOW), relative.format(0, 'second'));
  assert.equal(ago(iso, NOW + 5 * 60_000), relative.format(-5, 'minute'));
  assert.equal(ago(iso, NOW + 3 * 3_600_000), relative.format(-3, 'hour'));
});

test('an unreadable timestamp shows nothing', () => {
  assert.equal(ago('yesterday', NOW), '');
});

test('only http(s) links are followed', () => {
  assert.equal(safeUrl('https://app.example.com/invoices/7'), 'https://app.example.com/invoices/7');
  assert.equal(safeUrl('http://localhost:3000/x'), 'http://localhost:3000/x');
  assert.equal(safeUrl('javascript:alert(1)'), null);
  assert.equal(safeUrl('data:text/html,<b>hi</b>'), null);
  assert.equal(safeUrl(null), null);
});
