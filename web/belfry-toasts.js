// The toasts of `<belfry-inbox>`: a short stack of new notifications, each gone after a few
// seconds unless the pointer or focus is on it. Urgent ones are alerts that stay until
// dismissed, and the last to be pushed out when the stack is full.

import { ICONS, content, h } from './belfry-view.js';

/** @typedef {import('./belfry-client.js').Notification} Notification */

const TOAST_MS = 6_000;
const MAX_TOASTS = 3;

export class Toasts {
  #region;
  #onOpen;
  /** @type {Map<string, { element: HTMLElement, timer?: ReturnType<typeof setTimeout>, remaining: number, started: number }>} */
  #toasts = new Map();

  /**
   * @param {HTMLElement} region where the toasts go (`[part="toasts"]`)
   * @param {(n: Notification) => void} onOpen a toast was clicked (it is already dismissed)
   */
  constructor(region, onOpen) {
    this.#region = region;
    this.#onOpen = onOpen;
  }

  /** How many are showing. */
  get size() {
    return this.#toasts.size;
  }

  /** Shows one for `n`, unless one already is. @param {Notification} n */
  show(n) {
    if (this.#toasts.has(n.id)) return;
    while (this.#toasts.size >= MAX_TOASTS) {
      const ids = [...this.#toasts.keys()];
      // The oldest goes first, urgent ones last.
      const victim = ids.find((id) => this.#toasts.get(id)?.element.dataset.priority !== 'URGENT') ?? ids[0];
      this.dismiss(victim);
    }
    const urgent = n.priority === 'URGENT';
    const open = h('button', { part: 'toast-open', class: 'open', type: 'button' }, ...content(n, 'toast'));
    const dismiss = h('button', { part: 'toast-dismiss', class: 'icon', type: 'button', 'aria-label': 'Dismiss' });
    dismiss.innerHTML = ICONS.close;
    const element = h('div', { part: urgent ? 'toast urgent' : 'toast', class: 'toast', 'data-id': n.id, 'data-priority': n.priority, role: urgent ? 'alert' : false }, open, dismiss);
    open.addEventListener('click', () => {
      this.dismiss(n.id);
      this.#onOpen(n);
    });
    dismiss.addEventListener('click', () => this.dismiss(n.id));
    const toast = { element, remaining: TOAST_MS, started: 0, timer: /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined) };
    const run = () => {
      toast.started = Date.now();
      toast.timer = setTimeout(() => this.dismiss(n.id), toast.remaining);
    };
    const pause = () => {
      if (toast.timer === undefined) return;
      clearTimeout(toast.timer);
      toast.timer = undefined;
      toast.remaining -= Date.now() - toast.started;
    };
    if (!urgent) {
      const focused = () => /** @type {ShadowRoot | Document} */ (element.getRootNode()).activeElement;
      element.addEventListener('pointerenter', pause);
      element.addEventListener('focusin', pause);
      element.addEventListener('pointerleave', () => !element.contains(focused()) && run());
      element.addEventListener('focusout', (event) => !element.contains(/** @type {Node | null} */ (event.relatedTarget)) && !element.matches(':hover') && run());
      run();
    }
    this.#toasts.set(n.id, toast);
    this.#region.append(element);
  }

  /** @param {string} id */
  dismiss(id) {
    const toast = this.#toasts.get(id);
    if (!toast) return;
    clearTimeout(toast.timer);
    toast.element.remove();
    this.#toasts.delete(id);
  }
}
