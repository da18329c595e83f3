// The model behind `<belfry-inbox>`: every notification known, one list per tab, the counts,
// the preference switches, and how pages read over HTTP merge with live changes. Plain data
// in, plain data out: no DOM, no I/O, no clock, so Node unit tests reach all of it.

/**
 * @typedef {import('./belfry-client.js').Notification} Notification
 * @typedef {import('./belfry-client.js').NotificationState} NotificationState
 * @typedef {import('./belfry-client.js').NotificationPage} NotificationPage
 * @typedef {import('./belfry-client.js').InboxChange} InboxChange
 * @typedef {import('./belfry-client.js').Counts} Counts
 * @typedef {import('./belfry-client.js').Preference} Preference
 * @typedef {import('./belfry-client.js').Channel} Channel
 * @typedef {Pick<Notification, 'seen' | 'read' | 'archived'>} Flags
 *
 * @typedef {object} TabList One tab's notifications as far as its pages have been read.
 * @property {string[]} ids Newest first.
 * @property {string | null} endCursor Where the next page starts.
 * @property {boolean} hasNext
 * @property {boolean} loading A page request is in flight (set by the element).
 * @property {boolean} loaded Its first page has arrived.
 */

/** @param {Flags} n @returns {Flags} */
export const flags = (n) => ({ seen: n.seen, read: n.read, archived: n.archived });

/** The inbox of one signed-in user as the element knows it. The tab `''` is "All". */
export class InboxStore {
  /** @type {Map<string, Notification>} Every known notification, in its latest state. */
  #byId = new Map();
  /** @type {Map<string, NotificationState>} The latest state a live change gave each id, for pages read before it. */
  #latest = new Map();
  /** @type {string[]} Live arrivals, newest first. */
  #liveAdded = [];
  /** @type {Map<string, TabList>} */
  #lists = new Map();
  /** @type {Counts} */
  #counts = { unread: 0, unseen: 0, byCategory: [] };
  /** @type {Set<string>} */
  #seenCategories = new Set(['general']);
  /** @type {Map<string, boolean> | undefined} `category/channel` -> enabled, once loaded */
  #preferences;
  /** @type {Channel[] | undefined} The channels the server delivers on, once loaded. */
  #channels;

  /** Forgets every notification, list, count, switch and channel (a restart); the categories seen stay. */
  reset() {
    this.#byId.clear();
    this.#latest.clear();
    this.#liveAdded = [];
    this.#lists.clear();
    this.#preferences = undefined;
    this.#channels = undefined;
    this.#counts = { unread: 0, unseen: 0, byCategory: [] };
  }

  /** The counts as last reported by the server. */
  get counts() {
    return this.#counts;
  }

  /** @param {Counts} counts */
  setCounts(counts) {
    this.#counts = counts;
    for (const { category } of counts.byCategory) this.#seenCategories.add(category);
  }

  /** Unread notifications in a tab, by the server's counts. @param {string} category */
  unread(category) {
    if (category === '') return this.#counts.unread;
    return this.#counts.byCategory.find((c) => c.category === category)?.unread ?? 0;
  }

  /** @param {string} id */
  get(id) {
    return this.#byId.get(id);
  }

  /** A tab's list, empty and not loaded until its first page arrives. @param {string} category @returns {TabList} */
  list(category) {
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
  applyPage(category, page) {
    const list = this.list(category);
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

  /**
   * Applies a live change: new notifications go on top of "All" and of their category's tab
   * (those already loaded; the others pick them up with their first page), states and counts
   * are updated. A notification already known, from a page or an earlier change, is not added
   * again.
   * @param {InboxChange} change
   * @returns {Notification[]} the notifications this change made known, as received
   */
  applyChange(change) {
    /** @type {Notification[]} */
    const added = [];
    for (const n of change.added) {
      if (this.#byId.has(n.id)) continue;
      this.#remember(n);
      this.#liveAdded.unshift(n.id);
      for (const key of new Set(['', n.category])) {
        const list = this.#lists.get(key);
        if (list?.loaded && !list.ids.includes(n.id)) list.ids.unshift(n.id);
      }
      added.push(n);
    }
    for (const state of change.changed) {
      this.#latest.set(state.id, state);
      this.#seenCategories.add(state.category);
      const n = this.#byId.get(state.id);
      if (n) this.#byId.set(state.id, { ...n, ...flags(state) });
    }
    for (const id of change.removed ?? []) {
      this.#byId.delete(id);
      this.#latest.delete(id);
      this.#liveAdded = this.#liveAdded.filter((other) => other !== id);
      for (const list of this.#lists.values()) list.ids = list.ids.filter((other) => other !== id);
    }
    this.setCounts(change.counts);
    return added;
  }

  /**
   * Sets flags on a known notification (an optimistic update, or putting one back).
   * @param {string} id @param {Partial<Flags>} change
   * @returns {Notification | undefined} the notification before, or undefined if unknown
   */
  update(id, change) {
    const before = this.#byId.get(id);
    if (before) this.#byId.set(id, { ...before, ...change });
    return before;
  }

  /** A tab's notifications to show, newest first: archived ones are left out. @param {string} category */
  visible(category) {
    return (this.#lists.get(category)?.ids ?? []).flatMap((id) => {
      const n = this.#byId.get(id);
      return n && !n.archived && (category === '' || n.category === category) ? [n] : [];
    });
  }

  /** The newest notification of "All" (what opening the inbox marks seen up to). */
  newest() {
    for (const id of this.#lists.get('')?.ids ?? []) {
      const n = this.#byId.get(id);
      if (n) return n;
    }
    return undefined;
  }

  /**
   * Tab categories: `listed` (the `categories` attribute) in its order, then every other one
   * seen in a notification, a count or a switch, by name.
   * @param {string[]} [listed]
   */
  categories(listed = []) {
    const others = [...this.#seenCategories].filter((c) => !listed.includes(c)).sort();
    return [...new Set([...listed, ...others])];
  }

  /** Whether the switches have been loaded. */
  get hasPreferences() {
    return this.#preferences !== undefined;
  }

  /** Replaces the switches with the explicit ones the server returned. @param {Preference[]} preferences */
  setPreferences(preferences) {
    this.#preferences = new Map();
    for (const p of preferences) {
      this.#preferences.set(`${p.category}/${p.channel}`, p.enabled);
      this.#seenCategories.add(p.category);
    }
  }

  /** The channels the server delivers on, the settings' columns; undefined until loaded. */
  get channels() {
    return this.#channels;
  }

  /** @param {Channel[]} channels */
  setChannels(channels) {
    this.#channels = channels;
  }

  /** Anything not switched off explicitly is on. @param {string} category @param {string} channel */
  enabled(category, channel) {
    return this.#preferences?.get(`${category}/${channel}`) ?? true;
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
}
