// The `<belfry-inbox>` element: a bell with a live badge, a dropdown inbox, toasts and
// preferences. It renders an `InboxStore` (belfry-store.js), talks to the server through a
// `BelfryClient` (belfry-client.js) and takes its looks from belfry-view.js. It is defined by
// the entry point, belfry-inbox.js.

import { BelfryClient, BelfryError } from './belfry-client.js';
import { InboxStore, flags } from './belfry-store.js';
import { Toasts } from './belfry-toasts.js';
import { ICONS, TEMPLATE, ago, choices, clockTime, content, digestList, h, preferencesTable, quietList, quietWindow, safeUrl } from './belfry-view.js';

/**
 * @typedef {import('./belfry-client.js').Notification} Notification
 * @typedef {import('./belfry-client.js').NotificationState} NotificationState
 * @typedef {import('./belfry-client.js').InboxChange} InboxChange
 * @typedef {import('./belfry-client.js').Status} Status
 * @typedef {import('./belfry-client.js').Channel} Channel
 * @typedef {import('./belfry-client.js').QuietHours} QuietHours
 * @typedef {import('./belfry-client.js').QuietWindow} QuietWindow
 * @typedef {import('./belfry-client.js').Digests} Digests
 */

const Base = /** @type {typeof HTMLElement} */ (globalThis.HTMLElement ?? class {});
/** How often the relative times ("3 min ago") on screen are brought up to date. */
const CLOCK_MS = 15_000;

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

  #store = new InboxStore();
  #tab = '';
  /** @type {string | null} The list row that holds the roving tabindex. */
  #activeId = null;
  /** @type {'status' | 'action' | null} */
  #errorKind = null;
  /** @type {Toasts | undefined} */
  #toasts;
  /** @type {Map<string, HTMLLIElement>} */
  #rows = new Map();
  /** @type {Map<string, HTMLButtonElement>} */
  #tabs = new Map();
  /** @type {IntersectionObserver | undefined} */
  #observer;
  /** @type {Record<string, HTMLElement>} */
  #ui = {};
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #clock;
  /** @type {QuietHours | undefined} The quiet hours as the server last gave them. */
  #quiet;
  /** @type {QuietWindow[]} The windows being edited: replaced, never changed in place, until saved. */
  #draft = [];
  /** @type {Digests | undefined} The digests as the server last gave them. */
  #digests;

  #onDocumentPointer = (/** @type {Event} */ event) => {
    if (this.#isOpen() && !event.composedPath().includes(this)) this.hide(false);
  };

  #onResize = () => this.#isOpen() && this.#place();

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
    addEventListener('resize', this.#onResize);
    clearInterval(this.#clock);
    this.#clock = setInterval(() => this.#renderTimes(), CLOCK_MS);
    this.#queueRestart();
  }

  disconnectedCallback() {
    document.removeEventListener('pointerdown', this.#onDocumentPointer, true);
    removeEventListener('resize', this.#onResize);
    clearInterval(this.#clock);
    this.#clock = undefined;
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
    this.#place();
    this.#ui.bell.setAttribute('aria-expanded', 'true');
    this.#render();
    this.#renderTimes();
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

  /**
   * Moves the dropdown sideways into the viewport when the bell is too close to an edge for
   * its width (a bell 24 px from the edge of a 390 px phone, say), 8 px from the edges.
   */
  #place() {
    const panel = this.#ui.panel;
    panel.style.translate = '';
    const { left, right } = panel.getBoundingClientRect();
    const width = document.documentElement.clientWidth;
    const shift = left < 8 ? 8 - left : right > width - 8 ? width - 8 - right : 0;
    panel.style.translate = shift ? `${shift}px` : '';
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
      quietZone: $('[part="quiet-zone"]'), quietUntil: $('[part="quiet-until"]'), quietList: $('[part="quiet-windows"]'),
      quietForm: $('[part="quiet-form"]'), quietError: $('[part="quiet-error"]'), quietSave: $('[part="quiet-save"]'),
      quietSaved: $('[part="quiet-saved"]'), digests: $('[part="digests"]'), digestZone: $('[part="digest-zone"]'),
      digestList: $('[part="digest-list"]'), digestForm: $('[part="digest-form"]'), digestError: $('[part="digest-error"]'),
      digestSave: $('[part="digest-save"]'), digestSaved: $('[part="digest-saved"]'),
    };
    const ui = this.#ui;
    this.#toasts = new Toasts(ui.toasts, (n) => this.#activate(this.#store.get(n.id) ?? n));
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
    ui.quietForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.#addWindow();
    });
    ui.quietList.addEventListener('click', (event) => {
      const index = /** @type {HTMLElement} */ (event.target).closest('button')?.dataset.index;
      if (index) this.#removeWindow(Number(index));
    });
    ui.quietSave.addEventListener('click', () => this.#saveQuiet());
    ui.digestForm.addEventListener('change', () => this.#renderDigests(null, '', true));
    ui.digestForm.addEventListener('submit', (event) => {
      event.preventDefault();
      // What the frequency does not use is disabled, so left out; an empty time is the server's to refuse.
      /** @type {any} */
      const { category, channel, frequency, at, day } = Object.fromEntries(new FormData(/** @type {HTMLFormElement} */ (ui.digestForm)));
      this.#digest(category, channel, frequency ? { frequency, at: at || null, day: day ?? null } : null);
    });
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
    this.#quiet = undefined;
    this.#draft = [];
    this.#digests = undefined;
    this.#renderQuiet();
    this.#renderDigests(null);
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
    this.#store.reset();
    if (this.shadowRoot) this.#render();
  }

  /** The first page of "All" and its counts, then the live subscription after its `liveCursor`. */
  async #load() {
    const client = this.#client;
    if (!client) return;
    const generation = this.#generation;
    this.#setStatus({ state: 'connecting' });
    const list = this.#store.list('');
    list.loading = true;
    this.#render();
    try {
      const page = await client.notifications({ first: this.#pageSize() });
      if (generation !== this.#generation) return;
      this.#reloadDelay = 0;
      this.#store.applyPage('', page);
      this.#store.setCounts(page.counts);
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

  /** @param {InboxChange} change */
  #onChange(change) {
    for (const n of this.#store.applyChange(change)) {
      this.#emit('belfry:notification', n);
      // One that arrived during the person's quiet hours is listed, but does not pop up.
      if (!n.read && !n.archived && !n.quiet && !this.hasAttribute('no-toasts')) this.#toasts?.show(n);
    }
    for (const state of change.changed) if (state.read || state.archived) this.#toasts?.dismiss(state.id);
    this.#render();
    // Arrivals in an open inbox are in plain view: they are seen.
    if (change.added.length > 0 && this.#isOpen()) this.#markAllSeen();
  }

  /** The `categories` attribute, then every other category seen. */
  #categories() {
    return this.#store.categories((this.getAttribute('categories') ?? '').split(',').map((c) => c.trim()).filter(Boolean));
  }

  /** The current tab's notifications, newest first. */
  #visible() {
    return this.#store.visible(this.#tab);
  }

  // ---- Actions ----

  /**
   * Applies flags at once and sends the mutation; on failure puts them back and says why.
   * @param {string} id @param {Partial<NotificationState>} change
   * @param {(client: BelfryClient) => Promise<Notification>} mutation
   */
  async #optimistic(id, change, mutation) {
    const client = this.#client;
    const before = client && this.#store.update(id, change);
    if (!client || !before) return;
    this.#render();
    try {
      this.#store.update(id, flags(await mutation(client)));
    } catch (error) {
      this.#store.update(id, flags(before));
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
    for (const n of before) this.#store.update(n.id, { read: true, seen: true });
    this.#render();
    try {
      const result = await client.markAllRead({ category: this.#tab || null, upTo: visible[0].cursor });
      this.#store.setCounts(result.counts);
    } catch (error) {
      for (const n of before) this.#store.update(n.id, flags(n));
      this.#showError(error, 'action');
    }
    this.#render();
  }

  /** Opening the inbox: everything up to the newest notification it shows is seen. */
  async #markAllSeen() {
    const client = this.#client;
    const newest = this.#store.newest();
    if (!client || !newest || this.#store.counts.unseen === 0) return;
    const generation = this.#generation;
    try {
      const result = await client.markAllSeen({ upTo: newest.cursor });
      if (generation === this.#generation) this.#store.setCounts(result.counts);
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
    if (!this.#store.list(category).loaded) this.#loadPage(category);
  }

  #loadMore() {
    const list = this.#store.list(this.#tab);
    if (this.#isOpen() && list.loaded && list.hasNext) this.#loadPage(this.#tab);
  }

  /** The first page of a tab, or its next one. @param {string} category */
  async #loadPage(category) {
    const client = this.#client;
    const list = this.#store.list(category);
    if (!client || list.loading) return;
    const generation = this.#generation;
    list.loading = true;
    this.#render();
    try {
      const after = list.loaded ? list.endCursor : null;
      const page = await client.notifications({ first: this.#pageSize(), after, category: category || null });
      if (generation !== this.#generation) return;
      this.#store.applyPage(category, page);
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
    this.#loadQuiet();
    this.#digest();
    this.#ui.grid.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
    try {
      // The channels are the server's configuration: asked for once, with the first switches.
      const [preferences, channels] = await Promise.all([client.preferences(), this.#store.channels ?? client.deliveryChannels()]);
      if (generation !== this.#generation) return;
      this.#store.setChannels(channels);
      this.#store.setPreferences(preferences);
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
      this.#store.setPreferences(saved);
    } catch (error) {
      // Put the switch back unless the user has flipped it again meanwhile.
      if (input.checked === enabled) input.checked = !enabled;
      this.#showError(error, 'action');
    }
  }

  async #loadQuiet() {
    const client = this.#client;
    if (!client) return;
    const generation = this.#generation;
    try {
      const hours = await client.quietHours();
      if (generation !== this.#generation) return;
      this.#quiet = hours;
      this.#draft = hours.windows;
      this.#renderQuiet();
    } catch (error) {
      if (generation === this.#generation) this.#renderQuiet(error);
    }
  }

  #addWindow() {
    const form = /** @type {HTMLFormElement} */ (this.#ui.quietForm);
    const data = new FormData(form);
    const w = quietWindow(data.getAll('day').map(String), String(data.get('start')), String(data.get('end')));
    if (typeof w === 'string') return this.#renderQuiet(w);
    this.#draft = [...this.#draft, w];
    for (const day of form.querySelectorAll('input[name="day"]')) /** @type {HTMLInputElement} */ (day).checked = false;
    this.#renderQuiet();
  }

  /** @param {number} index */
  #removeWindow(index) {
    this.#draft = this.#draft.filter((_, i) => i !== index);
    this.#renderQuiet();
    // Focus stays near: on the window that took its place, else the one before, else the form.
    const buttons = this.#ui.quietList.querySelectorAll('button');
    (buttons[Math.min(index, buttons.length - 1)] ?? this.#ui.quietForm.querySelector('input'))?.focus();
  }

  async #saveQuiet() {
    const client = this.#client;
    if (!client) return;
    const generation = this.#generation;
    const sent = this.#draft;
    /** @type {HTMLButtonElement} */ (this.#ui.quietSave).disabled = true;
    try {
      const hours = await client.setQuietHours(sent);
      if (generation !== this.#generation) return;
      this.#quiet = hours;
      // Edits made while it was saving stay.
      if (this.#draft === sent) this.#draft = hours.windows;
      this.#renderQuiet(null, 'Saved');
    } catch (error) {
      if (generation === this.#generation) this.#renderQuiet(error);
    }
  }

  /**
   * Sets one digest (a `null` schedule turns it off), or without a category reads them.
   * @param {string} [category] @param {string} [channel] @param {any} [schedule]
   */
  async #digest(category, channel, schedule) {
    const client = this.#client;
    if (!client) return;
    const generation = this.#generation;
    /** @type {HTMLButtonElement} */ (this.#ui.digestSave).disabled = true;
    try {
      const digests = await (category ? client.setDigest(category, /** @type {Channel} */ (channel), schedule) : client.digests());
      if (generation !== this.#generation) return;
      this.#digests = digests;
      this.#renderDigests(null, category && 'Saved');
    } catch (error) {
      if (generation === this.#generation) this.#renderDigests(error);
    }
    // The answer shows below the Save button, where the settings may not reach.
    if (category) this.#ui.digestSaved.scrollIntoView({ block: 'nearest' });
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
    if (!this.#ui.preferences.hidden && this.#store.hasPreferences) this.#renderPreferences();
  }

  #renderBadge() {
    const mode = this.getAttribute('badge') === 'unread' ? 'unread' : 'unseen';
    const count = this.#store.counts[mode];
    this.#ui.badge.textContent = count > 99 ? '99+' : String(count);
    this.#ui.badge.hidden = count === 0;
    this.#ui.bell.setAttribute('aria-label', count === 0 ? 'Notifications' : `Notifications, ${count} ${mode}`);
  }

  #renderTabs() {
    const categories = ['', ...this.#categories()];
    categories.forEach((category, index) => {
      let tab = this.#tabs.get(category);
      if (!tab) {
        tab = h('button', { part: 'tab', class: 'tab', type: 'button', role: 'tab', 'data-category': category, id: `tab-${index}` },
          category || 'All', h('span', { part: 'tab-count', class: 'tab-count' }), h('span', { class: 'sr' }, ' unread'));
        this.#tabs.set(category, tab);
      }
      const selected = category === this.#tab;
      const count = this.#store.unread(category);
      tab.setAttribute('aria-selected', String(selected));
      tab.setAttribute('part', selected ? 'tab selected' : 'tab');
      tab.tabIndex = selected ? 0 : -1;
      // The name is the visible text ("Billing 3") plus a hidden " unread", so it contains what
      // a speech user reads off the tab (WCAG 2.5.3).
      const [badge, unread] = /** @type {HTMLElement[]} */ ([...tab.children]);
      badge.textContent = String(count);
      badge.hidden = unread.hidden = count === 0;
      if (this.#ui.tabs.children[index] !== tab) this.#ui.tabs.insertBefore(tab, this.#ui.tabs.children[index] ?? null);
      if (selected) this.#ui.scroll.setAttribute('aria-labelledby', tab.id);
    });
  }

  #renderList() {
    const ui = this.#ui;
    const visible = this.#visible();
    const list = this.#store.list(this.#tab);
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
    ui.loading.hidden = !list.loading;
    ui.empty.hidden = visible.length > 0 || !list.loaded || list.loading || list.hasNext;
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
    const current = () => this.#store.get(id);
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
    open.replaceChildren(...content(n, 'item'));
    const toggle = /** @type {HTMLElement} */ (actions.firstElementChild);
    toggle.innerHTML = n.read ? ICONS.unread : ICONS.read;
    toggle.setAttribute('aria-label', n.read ? 'Mark as unread' : 'Mark as read');
    toggle.title = toggle.getAttribute('aria-label') ?? '';
  }

  /** Relative times age with the clock, not only when a row changes: rewrites just their text. */
  #renderTimes() {
    if (!this.shadowRoot || (!this.#isOpen() && !this.#toasts?.size)) return;
    const now = Date.now();
    for (const time of this.shadowRoot.querySelectorAll('time')) {
      const text = ago(time.dateTime, now);
      if (time.textContent !== text) time.textContent = text;
    }
  }

  /**
   * The quiet hours section: the draft's windows, the zone, whether quiet now, and `problem`
   * (a server error or a form's) if any.
   * @param {unknown} [problem] @param {string} [saved]
   */
  #renderQuiet(problem = null, saved = '') {
    const ui = this.#ui;
    const hours = this.#quiet;
    if (!ui.quietList) return;
    ui.quietZone.textContent = hours?.timeZone ?? '…';
    ui.quietUntil.hidden = !hours?.quietUntil;
    ui.quietUntil.textContent = hours?.quietUntil ? `Quiet until ${clockTime(hours.quietUntil, hours.timeZone)}` : '';
    ui.quietList.replaceChildren(...quietList(this.#draft));
    ui.quietError.hidden = problem === null;
    ui.quietError.textContent = problem instanceof Error ? problem.message : String(problem ?? '');
    const changed = JSON.stringify(this.#draft) !== JSON.stringify(hours?.windows ?? []);
    /** @type {HTMLButtonElement} */ (ui.quietSave).disabled = !hours || !changed;
    ui.quietSaved.textContent = changed ? 'Not saved yet' : saved;
  }

  /**
   * The digests section (only with a channel besides in-app); with `problem` (null for none)
   * also the list and the messages. The form takes the server's schedule for the category and
   * channel chosen when they change, and after an answer, unless it refused or the person `edits`.
   * @param {unknown} [problem] @param {string} [saved] @param {boolean} [edits]
   */
  #renderDigests(problem, saved = '', edits = false) {
    const ui = this.#ui;
    const digests = this.#digests;
    if (!ui.digests) return;
    const f = /** @type {any} */ (ui.digestForm).elements;
    const channels = (this.#store.channels ?? []).filter((c) => c !== 'IN_APP');
    ui.digests.hidden = !channels.length;
    choices(f.category, [...new Set([...this.#categories(), ...(digests?.settings.map((s) => s.category) ?? [])])]);
    choices(f.channel, channels);
    const chosen = `${f.category.value}/${f.channel.value}`;
    if (chosen !== ui.digestForm.dataset.chosen || (problem === null && !edits)) {
      const schedule = digests?.settings.find((s) => `${s.category}/${s.channel}` === chosen)?.schedule;
      f.frequency.value = schedule?.frequency ?? '';
      f.at.value = schedule?.at ?? f.at.value;
      f.day.value = schedule?.day ?? f.day.value;
      ui.digestForm.dataset.chosen = chosen;
    }
    f.day.parentElement.hidden = f.day.disabled = f.frequency.value !== 'WEEKLY';
    f.at.parentElement.hidden = f.at.disabled = !f.frequency.value || f.frequency.value === 'HOURLY';
    /** @type {HTMLButtonElement} */ (ui.digestSave).disabled = !digests;
    if (problem === undefined) return;
    ui.digestZone.textContent = digests?.timeZone ?? '…';
    ui.digestList.replaceChildren(...digestList(digests));
    ui.digestError.hidden = problem === null;
    ui.digestError.textContent = problem instanceof Error ? problem.message : String(problem ?? '');
    ui.digestSaved.textContent = saved;
  }

  #renderPreferences() {
    this.#renderDigests();
    const focused = /** @type {HTMLElement | null} */ (this.shadowRoot?.activeElement ?? null);
    const focusKey = focused?.dataset.category ? `${focused.dataset.category}/${focused.dataset.channel}` : null;
    this.#ui.grid.replaceChildren(preferencesTable(this.#categories(), this.#store.channels ?? [], (category, channel) => this.#store.enabled(category, channel)));
    if (focusKey) {
      const [category, channel] = focusKey.split('/');
      /** @type {HTMLElement | null} */ (this.#ui.grid.querySelector(`[data-category="${CSS.escape(category)}"][data-channel="${channel}"]`))?.focus();
    }
  }
}
