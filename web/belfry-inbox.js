// Belfry's browser SDK, the module apps import (served at /sdk/belfry-inbox.js): it exports
// `BelfryClient`, `BelfryError` and `BelfryInbox`, and defines `<belfry-inbox>` in a browser.
// The parts are plain ES modules beside it, loaded by relative imports, with no build step;
// none of them needs a DOM to be imported (see web/README.md).

import { BelfryInbox } from './belfry-element.js';
// Named here as well, so the browser fetches every module at once instead of level by level.
import './belfry-store.js';
import './belfry-toasts.js';
import './belfry-view.js';

export { BelfryClient, BelfryError } from './belfry-client.js';
export { BelfryInbox };

/**
 * @typedef {import('./belfry-client.js').Notification} Notification
 * @typedef {import('./belfry-client.js').NotificationState} NotificationState
 * @typedef {import('./belfry-client.js').NotificationPage} NotificationPage
 * @typedef {import('./belfry-client.js').InboxChange} InboxChange
 * @typedef {import('./belfry-client.js').Counts} Counts
 * @typedef {import('./belfry-client.js').Preference} Preference
 * @typedef {import('./belfry-client.js').Status} Status
 */

if (globalThis.customElements && !globalThis.customElements.get('belfry-inbox')) {
  globalThis.customElements.define('belfry-inbox', BelfryInbox);
}
