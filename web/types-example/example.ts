// A typed use of the SDK as a page script would write it (see web/README.md, "TypeScript").
// Only type-checked: `tsc -p web/types-example`.

import {
  BelfryClient,
  BelfryError,
  type BelfryInbox,
  type InboxChange,
  type Notification,
  type Status,
} from 'https://belfry.example.com/sdk/belfry-inbox.js';

const client = new BelfryClient({
  url: 'https://belfry.example.com',
  token: async () => (await fetch('/api/belfry-token')).text(),
});

export async function firstPageThenLive(render: (change: InboxChange) => void): Promise<() => void> {
  const page = await client.notifications({ first: 20, unreadOnly: true });
  const newest: Notification | undefined = page.notifications[0];
  if (newest && !newest.read) await client.markRead(newest.id);
  const { counts } = await client.markAllSeen({ upTo: newest?.cursor ?? null });
  console.log(counts.unseen, counts.byCategory.map((c) => c.category));

  const inbox = client.inbox({
    after: page.liveCursor,
    onChange: render,
    onStatus: (status: Status) => console.log(status.state, status.retryInMs),
    onError: (error) => console.warn(error.code, error.status, error.errors),
  });
  const viewer = await client.query<{ viewerId: string }>('{ viewerId }');
  console.log(viewer.viewerId.toUpperCase(), inbox.cursor);
  // Switches only for the channels this server delivers on.
  if ((await client.deliveryChannels()).includes('EMAIL')) {
    await client.updatePreferences([{ category: 'billing', channel: 'EMAIL', enabled: false }]);
  }

  // Quiet on weeknights; a toast-free notification says so.
  const quiet = await client.setQuietHours([{ days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], start: '22:00', end: '07:00' }]);
  if (quiet.quietUntil) console.log(`quiet until ${quiet.quietUntil} (${quiet.timeZone})`, newest?.quiet);
  console.log((await client.quietHours()).windows.map((w) => w.days.join()));

  // Billing email once a day, at nine in the person's zone; then back to one email each.
  const digests = await client.setDigest('billing', 'EMAIL', { frequency: 'DAILY', at: '09:00' });
  console.log(digests.settings.map((s) => `${s.category} ${s.schedule.frequency} ${s.nextAt}`), digests.timeZone);
  await client.setDigest('billing', 'EMAIL', null);

  // @ts-expect-error: markRead takes a notification's id, not the notification
  await client.markRead(newest);
  // @ts-expect-error: channels are IN_APP, EMAIL, SMS, PUSH and WEBHOOK
  await client.updatePreferences([{ category: 'billing', channel: 'PIGEON', enabled: true }]);
  // @ts-expect-error: days are MON to SUN
  await client.setQuietHours([{ days: ['Monday'], start: '22:00', end: '07:00' }]);
  // @ts-expect-error: a digest is hourly, daily or weekly
  await client.setDigest('billing', 'EMAIL', { frequency: 'MONTHLY', at: '09:00' });
  // @ts-expect-error: the cursor is the client's to move
  inbox.cursor = null;
  return () => inbox.close();
}

export function isUnauthenticated(error: unknown): boolean {
  return error instanceof BelfryError && error.code === 'UNAUTHENTICATED';
}

// The element, found through HTMLElementTagNameMap: no cast needed.
const element: BelfryInbox | null = document.querySelector('belfry-inbox');
const created: BelfryInbox = document.createElement('belfry-inbox');
created.setAttribute('theme', 'dark');

if (element) {
  element.tokenProvider = async () => (await fetch('/api/belfry-token')).text();
  element.addEventListener('belfry:open', (event) => {
    event.preventDefault();
    if (event.detail.actionUrl) history.pushState(null, '', event.detail.actionUrl);
  });
  element.addEventListener('belfry:status', (event) => {
    if (event.detail.state === 'error') console.warn(event.detail.error?.message);
    // @ts-expect-error: the states are connecting, live, offline and error
    if (event.detail.state === 'online') console.log('never');
  });
  const onNew = (event: CustomEvent<Notification>) => console.log(event.detail.title);
  element.addEventListener('belfry:notification', onNew);
  element.removeEventListener('belfry:notification', onNew);
  element.addEventListener('click', (event: MouseEvent) => console.log(event.button));
  element.show();
  element.hide(false);
  console.log(element.client?.url);

  // @ts-expect-error: a notification has no `text` (its fields are title and body)
  element.addEventListener('belfry:notification', (event) => console.log(event.detail.text));
  // @ts-expect-error: a token provider returns the token, a string
  element.tokenProvider = async () => 42;
  // @ts-expect-error: the element makes its own client
  element.client = client;
}
