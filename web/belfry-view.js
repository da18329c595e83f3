// What `<belfry-inbox>` looks like: its icons, styles and shadow-DOM template, and the small
// helpers that build and format what goes in it. Nothing here holds state; it imports in Node
// without a DOM (the builders need one only when called).

/**
 * @typedef {import('./belfry-client.js').Notification} Notification
 * @typedef {import('./belfry-client.js').Channel} Channel
 * @typedef {import('./belfry-client.js').Weekday} Weekday
 * @typedef {import('./belfry-client.js').QuietWindow} QuietWindow
 * @typedef {import('./belfry-client.js').Digests} Digests
 * @typedef {import('./belfry-client.js').DigestSetting} DigestSetting
 */

/** @type {Channel[]} */
const CHANNELS = ['IN_APP', 'EMAIL', 'SMS', 'PUSH', 'WEBHOOK'];
const CHANNEL_LABELS = { IN_APP: 'In-app', EMAIL: 'Email', SMS: 'SMS', PUSH: 'Push', WEBHOOK: 'Webhook' };
/** @type {Weekday[]} */
const WEEKDAYS = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'];
const dayName = (/** @type {string} */ day) => day[0] + day.slice(1).toLowerCase();
const options = (/** @type {string[]} */ values, label = dayName) => values.map((v) => `<option value="${v}">${label(v)}</option>`).join('');

const svg = (/** @type {string} */ path) =>
  `<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${path}</svg>`;
export const ICONS = {
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
  --_high: var(--belfry-high, #8a5c00); --_urgent: var(--belfry-urgent, #d1242f); --_live: var(--belfry-live, #1a7f37);
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
  background: var(--_badge); color: var(--_bg); font-size: 11px; font-weight: 700; line-height: 18px; text-align: center;
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
.flag.URGENT { color: var(--_bg); background: var(--_urgent); }
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
.quiet { margin-top: 14px; border-top: 1px solid var(--_border); font-size: 13px; }
h3 { margin: 12px 0 4px; font-size: 13px; }
.note { margin: 4px 0; font-size: 12px; color: var(--_muted); }
.windows li { display: flex; align-items: center; justify-content: space-between; }
.quiet-form { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 10px; margin: 8px 0; font-size: 12px; }
fieldset { display: flex; flex-wrap: wrap; gap: 2px 5px; margin: 0; padding: 0; border: 0; }
legend { float: left; padding: 0; color: var(--_muted); }
fieldset input { margin: 0 2px; }
input[type="time"], select { font: inherit; color: inherit; background: var(--_bg); border: 1px solid var(--_border); border-radius: 6px; padding: 1px 4px; }
.quiet .error { margin: 4px 0; }
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

export const TEMPLATE = `<style>${STYLE}</style>
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
    <div part="quiet-hours" class="quiet">
      <h3 id="quiet-heading">Quiet hours</h3>
      <p class="note">Notifications arrive without a toast; other channels wait until it ends. Times in <span part="quiet-zone">…</span>.</p>
      <p part="quiet-until" hidden></p>
      <ul part="quiet-windows" class="windows" aria-labelledby="quiet-heading"></ul>
      <form part="quiet-form" class="quiet-form" aria-label="Add quiet hours">
        <fieldset><legend>Days</legend>${WEEKDAYS.map((d) => `<label><input type="checkbox" name="day" value="${d}">${dayName(d)}</label>`).join('')}</fieldset>
        <label>From <input type="time" name="start" value="22:00" required></label>
        <label>To <input type="time" name="end" value="07:00" required></label>
        <button part="quiet-add" class="text-button" type="submit">Add</button>
      </form>
      <p part="quiet-error" class="error" role="alert" hidden></p>
      <button part="quiet-save" class="text-button" type="button" disabled>Save quiet hours</button> <span part="quiet-saved" class="note" role="status"></span>
    </div>
    <div part="digests" class="quiet" hidden>
      <h3 id="digest-heading">Digests</h3>
      <p class="note">One message per period instead of one per notification. Times in <span part="digest-zone">…</span>.</p>
      <ul part="digest-list" class="windows" aria-labelledby="digest-heading"></ul>
      <form part="digest-form" class="quiet-form" aria-label="Set a digest">
        <label>Category <select name="category"></select></label>
        <label>Channel <select name="channel"></select></label>
        <label>Send <select name="frequency"><option value="">Off</option>${options(['HOURLY', 'DAILY', 'WEEKLY'])}</select></label>
        <label>On <select name="day">${options(WEEKDAYS)}</select></label>
        <label>At <input type="time" name="at" value="09:00"></label>
        <button part="digest-save" class="text-button" type="submit" disabled>Save digest</button>
      </form>
      <p part="digest-error" class="error" role="alert" hidden></p>
      <span part="digest-saved" class="note" role="status"></span>
    </div>
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
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) element.setAttribute(name, '');
    else if (typeof value === 'string') element.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== false) element.append(child);
  return element;
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
/** @type {[number, number, Intl.RelativeTimeFormatUnit][]} Below `limit` seconds, count in `size`-second `unit`s. */
const UNITS = [[3600, 60, 'minute'], [86400, 3600, 'hour'], [604800, 86400, 'day']];

/**
 * "3 min ago" (or "in 3 min"), from an RFC 3339 timestamp; the date itself after a week.
 * @param {string} iso @param {number} [now] milliseconds since the epoch
 */
export function ago(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const seconds = (then - now) / 1000;
  if (Math.abs(seconds) < 45) return RELATIVE.format(0, 'second');
  for (const [limit, size, unit] of UNITS) {
    if (Math.abs(seconds) < limit) return RELATIVE.format(Math.round(seconds / size), unit);
  }
  return new Date(then).toLocaleDateString();
}

/** Only web links and same-site paths are followed (never `javascript:`). @param {string | null} url */
export function safeUrl(url) {
  if (!url) return null;
  try {
    const resolved = new URL(url, globalThis.location?.href);
    return resolved.protocol === 'https:' || resolved.protocol === 'http:' ? resolved.href : null;
  } catch {
    return null;
  }
}


/**
 * The inside of an item's or a toast's open button: dot, icon, title, body and a `<time>`
 * whose text the element keeps current.
 * @param {Notification} n @param {'item' | 'toast'} kind
 */
export function content(n, kind) {
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

/**
 * The settings: one row per category, one switch per channel the server delivers on.
 * @param {string[]} categories @param {Channel[]} delivered
 * @param {(category: string, channel: Channel) => boolean} enabled
 */
export function preferencesTable(categories, delivered, enabled) {
  const channels = CHANNELS.filter((channel) => delivered.includes(channel));
  const head = h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'sr' }, 'Category')),
    ...channels.map((channel) => h('th', { scope: 'col' }, CHANNEL_LABELS[channel])));
  const rows = categories.map((category) =>
    h('tr', {}, h('th', { scope: 'row' }, category), ...channels.map((channel) => {
      const input = h('input', { type: 'checkbox', role: 'switch', part: 'switch', 'data-category': category, 'data-channel': channel,
        'aria-label': `${category}: ${CHANNEL_LABELS[channel]}` });
      input.checked = enabled(category, channel);
      return h('td', {}, input);
    })));
  return h('table', { part: 'preferences-table' }, h('thead', {}, head), h('tbody', {}, ...rows));
}

/**
 * How a window reads: "Mon–Fri, 22:00–07:00 next day", "Sat, Sun, all day".
 * @param {QuietWindow} w
 */
export function windowLabel({ days, start, end }) {
  /** @type {[number, number][]} */
  const runs = [];
  WEEKDAYS.forEach((day, i) => {
    if (!days.includes(day)) return;
    const run = runs.at(-1);
    if (run && run[1] === i - 1) run[1] = i;
    else runs.push([i, i]);
  });
  // Three days or more in a row read as a range.
  const named = days.length >= 7 ? 'Every day'
    : runs.flatMap(([a, b]) => (b - a >= 2 ? [`${dayName(WEEKDAYS[a])}–${dayName(WEEKDAYS[b])}`] : WEEKDAYS.slice(a, b + 1).map(dayName))).join(', ');
  return `${named}, ${start === end ? 'all day' : `${start}–${end}${end < start ? ' next day' : ''}`}`;
}

/**
 * The window the form describes, or what is missing.
 * @param {string[]} days @param {string} start @param {string} end `HH:MM`, as a time input gives it
 * @returns {QuietWindow | string}
 */
export function quietWindow(days, start, end) {
  const time = /^([01]\d|2[0-3]):[0-5]\d$/;
  if (!days.length) return 'Choose at least one day.';
  if (!time.test(start) || !time.test(end)) return 'Enter a start and an end time.';
  return { days: WEEKDAYS.filter((day) => days.includes(day)), start, end };
}

/**
 * An instant on the person's clock: "07:00", or "Tue 07:00" when it is not today there.
 * @param {string} iso @param {string} timeZone an IANA zone (UTC if this browser does not know it)
 * @param {number} [now] milliseconds since the epoch
 */
export function clockTime(iso, timeZone, now = Date.now()) {
  const format = (/** @type {Intl.DateTimeFormatOptions} */ options) => {
    try {
      return new Intl.DateTimeFormat('en-GB', { ...options, timeZone });
    } catch {
      return new Intl.DateTimeFormat('en-GB', { ...options, timeZone: 'UTC' });
    }
  };
  const then = Date.parse(iso);
  const day = format({ dateStyle: 'short' });
  /** @type {Intl.DateTimeFormatOptions} */
  const clock = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  return format(day.format(then) === day.format(now) ? clock : { weekday: 'short', ...clock }).format(then);
}

/** The quiet windows, each with a remove button carrying its `data-index`. @param {QuietWindow[]} windows */
export function quietList(windows) {
  if (!windows.length) return [h('li', { class: 'note' }, 'None yet.')];
  return windows.map((w, index) => {
    const label = windowLabel(w);
    const remove = h('button', { part: 'quiet-remove', class: 'icon', type: 'button', 'data-index': String(index), 'aria-label': `Remove ${label}`, title: 'Remove' });
    remove.innerHTML = ICONS.close;
    return h('li', { part: 'quiet-window' }, label, remove);
  });
}

/**
 * How a digest reads: "billing, Email: Weekly on Mon at 09:00, next Mon 09:00".
 * @param {DigestSetting} s @param {string} timeZone @param {number} [now]
 */
export function digestLabel({ category, channel, schedule: { frequency, at, day }, nextAt }, timeZone, now) {
  return `${category}, ${CHANNEL_LABELS[channel]}: ${dayName(frequency)}${frequency === 'WEEKLY' && day ? ` on ${dayName(day)}` : ''}${frequency === 'HOURLY' ? '' : ` at ${at}`}, next ${clockTime(nextAt, timeZone, now)}`;
}

/** @param {Digests | undefined} d */
export function digestList(d) {
  if (!d?.settings.length) return [h('li', { class: 'note' }, 'None: each notification goes on its own.')];
  return d.settings.map((s) => h('li', { part: 'digest' }, digestLabel(s, d.timeZone)));
}

/**
 * Gives a select these options (channels by their names), keeping its choice if still there;
 * left alone when it has them, so an open one stays open.
 * @param {HTMLSelectElement} select @param {string[]} values
 */
export function choices(select, values) {
  const value = select.value;
  if (select.dataset.values === String(values)) return;
  select.dataset.values = String(values);
  select.replaceChildren(...values.map((v) => h('option', { value: v }, /** @type {any} */ (CHANNEL_LABELS)[v] ?? v)));
  if (values.includes(value)) select.value = value;
}
