// TypeScript declarations for Belfry's browser SDK, served at /sdk/belfry-inbox.d.ts beside the
// entry point /sdk/belfry-inbox.js (and /sdk/belfry-client.d.ts beside /sdk/belfry-client.js,
// which this file re-exports). Having this file in a program also types
// `document.querySelector('belfry-inbox')` and, with React 19's types, `<belfry-inbox>` in JSX.
// See web/README.md ("TypeScript").

import type { BelfryClient, Notification, Status } from './belfry-client.js';

export * from './belfry-client.js';

/** The events `<belfry-inbox>` dispatches (all bubble and are composed), by type. */
export interface BelfryInboxEventMap extends HTMLElementEventMap {
  /** A new live notification, also those caught up after a reconnect. */
  'belfry:notification': CustomEvent<Notification>;
  /**
   * A notification (an item or a toast) is being opened. Cancelable: `preventDefault()` to
   * route it yourself instead of `location.assign(actionUrl)`.
   */
  'belfry:open': CustomEvent<Notification>;
  /** The connection changed state. */
  'belfry:status': CustomEvent<Status>;
}

/** The attributes of `<belfry-inbox>` (all observed), as JSX props take them. */
export interface BelfryInboxAttributes {
  /** Belfry's base URL; default: the origin the script was loaded from. */
  server?: string;
  /** The user's JWT (fixed: when it is rejected the element shows an error and stops). */
  token?: string;
  /** Default `auto` (follows `prefers-color-scheme`). */
  theme?: 'auto' | 'light' | 'dark';
  /** Where the dropdown opens from the bell; default `bottom-end`. */
  position?: 'bottom-end' | 'bottom-start' | 'top-end' | 'top-start';
  /** What the bell counts; default `unseen`. */
  badge?: 'unseen' | 'unread';
  /** Notifications per page (default 20, at most 100). */
  'page-size'?: number | `${number}`;
  /** Comma list of categories always offered as tabs and in the settings, before the ones seen. */
  categories?: string;
  /** Present: no toasts for new notifications. */
  'no-toasts'?: boolean;
}

/** A function returning a user JWT (possibly async). */
export type TokenProvider = () => string | Promise<string>;

/**
 * `<belfry-inbox>`: a bell with a live badge, a dropdown inbox, toasts and preferences.
 * Defined by /sdk/belfry-inbox.js when it loads in a browser.
 */
export declare class BelfryInbox extends HTMLElement {
  static observedAttributes: string[];
  /**
   * For apps that mint tokens on their backend: called on every connect and after a
   * rejection; takes precedence over the `token` attribute.
   */
  get tokenProvider(): TokenProvider | undefined;
  set tokenProvider(provider: TokenProvider | undefined);
  /** The client this element uses (undefined until it has a token). */
  get client(): BelfryClient | undefined;
  /** Opens the dropdown. */
  show(): void;
  /** Closes the dropdown (and returns focus to the bell unless `focusBell` is false). */
  hide(focusBell?: boolean): void;
  /** Called by the browser. */
  connectedCallback(): void;
  /** Called by the browser. */
  disconnectedCallback(): void;
  /** Called by the browser. */
  attributeChangedCallback(name: string, before: string | null, after: string | null): void;

  addEventListener<K extends keyof BelfryInboxEventMap>(
    type: K,
    listener: (this: BelfryInbox, event: BelfryInboxEventMap[K]) => any,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof BelfryInboxEventMap>(
    type: K,
    listener: (this: BelfryInbox, event: BelfryInboxEventMap[K]) => any,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions,
  ): void;
  #private;
}

declare global {
  interface HTMLElementTagNameMap {
    'belfry-inbox': BelfryInbox;
  }
}

// React 19 keeps JSX in the `react` module. Without React's types this augmentation is ignored.
declare module 'react' {
  namespace JSX {
    interface IntrinsicElements {
      /**
       * React 19 sets a prop the element has as a property (`tokenProvider`), any other as an
       * attribute. Listen to the `belfry:*` events through a `ref`.
       */
      'belfry-inbox': DetailedHTMLProps<HTMLAttributes<BelfryInbox>, BelfryInbox> &
        BelfryInboxAttributes & { tokenProvider?: TokenProvider };
    }
  }
}
