// The module apps import: it re-exports the parts and imports in Node, with no DOM.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sdk from '../belfry-inbox.js';
import { BelfryClient, BelfryError } from '../belfry-client.js';
import { BelfryInbox } from '../belfry-element.js';

test('belfry-inbox.js exports the client, its error and the element, and nothing else', () => {
  assert.deepEqual(Object.keys(sdk).sort(), ['BelfryClient', 'BelfryError', 'BelfryInbox']);
  assert.equal(sdk.BelfryClient, BelfryClient);
  assert.equal(sdk.BelfryError, BelfryError);
  assert.equal(sdk.BelfryInbox, BelfryInbox);
  assert.deepEqual(BelfryInbox.observedAttributes, ['server', 'token', 'theme', 'position', 'badge', 'page-size', 'categories', 'no-toasts']);
});
