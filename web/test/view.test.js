// The element's pure helpers: relative times (kept current by a timer in the element), links,
// how quiet hours read and are read from the form, and how digests read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ago, clockTime, digestLabel, quietWindow, safeUrl, windowLabel } from '../belfry-view.js';

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

test('a quiet window reads as its days and times, runs of three days or more as a range', () => {
  const weeknights = { days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], start: '22:00', end: '07:00' };
  assert.equal(windowLabel(weeknights), 'Mon–Fri, 22:00–07:00 next day');
  assert.equal(windowLabel({ days: ['SAT', 'SUN'], start: '13:00', end: '15:30' }), 'Sat, Sun, 13:00–15:30');
  assert.equal(windowLabel({ days: ['SUN', 'MON', 'WED', 'THU', 'FRI'], start: '09:00', end: '09:00' }), 'Mon, Wed–Fri, Sun, all day');
  assert.equal(windowLabel({ days: ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'], start: '12:00', end: '13:00' }), 'Every day, 12:00–13:00');
});

test('the form gives a window with its days in weekday order, or says what is missing', () => {
  assert.deepEqual(quietWindow(['SUN', 'MON'], '22:00', '07:00'), { days: ['MON', 'SUN'], start: '22:00', end: '07:00' });
  assert.equal(quietWindow([], '22:00', '07:00'), 'Choose at least one day.');
  assert.equal(quietWindow(['MON'], '', '07:00'), 'Enter a start and an end time.');
  assert.equal(quietWindow(['MON'], '24:00', '07:00'), 'Enter a start and an end time.');
  assert.equal(quietWindow(['MON'], '7:00', '08:00'), 'Enter a start and an end time.');
});

test('quiet until reads on the person\'s clock, with the weekday when it is not today there', () => {
  const now = Date.parse('2024-06-03T21:30:00Z'); // a Monday
  assert.equal(clockTime('2024-06-03T22:15:00Z', 'UTC', now), '22:15');
  assert.equal(clockTime('2024-06-04T07:00:00Z', 'UTC', now), 'Tue 07:00');
  // 23:30 in Paris already, so 00:15 there is tomorrow.
  assert.equal(clockTime('2024-06-03T22:15:00Z', 'Europe/Paris', now), 'Tue 00:15');
  assert.equal(clockTime('2024-06-03T22:15:00Z', 'Not/AZone', now), '22:15', 'an unknown zone reads as UTC');
});

test('a digest reads as its category, channel and schedule, and when the next one closes on the person\'s clock', () => {
  const now = Date.parse('2024-06-03T07:30:00Z'); // a Monday
  const digest = (frequency, at, day, nextAt) => ({ category: 'billing', channel: 'EMAIL', schedule: { frequency, at, day }, nextAt });
  assert.equal(digestLabel(digest('HOURLY', null, null, '2024-06-03T08:00:00Z'), 'UTC', now), 'billing, Email: Hourly, next 08:00');
  assert.equal(digestLabel(digest('DAILY', '09:00', null, '2024-06-03T07:00:00Z'), 'Europe/Paris', now), 'billing, Email: Daily at 09:00, next 09:00');
  const weekly = { ...digest('WEEKLY', '18:30', 'FRI', '2024-06-07T18:30:00Z'), channel: 'WEBHOOK' };
  assert.equal(digestLabel(weekly, 'UTC', now), 'billing, Webhook: Weekly on Fri at 18:30, next Fri 18:30');
});
