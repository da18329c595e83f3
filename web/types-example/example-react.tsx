// A typed use of `<belfry-inbox>` in a React 19 app (see web/README.md, "TypeScript"). The script
// is loaded once by the page; this file imports only types from it.

import { useEffect, useRef, type ReactElement } from 'react';
import type { BelfryInbox, Notification } from 'https://belfry.example.com/sdk/belfry-inbox.js';

export function NotificationBell({ onNew }: { onNew: (n: Notification) => void }): ReactElement {
  const ref = useRef<BelfryInbox>(null);
  useEffect(() => {
    const inbox = ref.current;
    if (!inbox) return;
    const listener = (event: CustomEvent<Notification>) => onNew(event.detail);
    inbox.addEventListener('belfry:notification', listener);
    return () => inbox.removeEventListener('belfry:notification', listener);
  }, [onNew]);
  return (
    <belfry-inbox
      ref={ref}
      server="https://belfry.example.com"
      tokenProvider={async () => (await fetch('/api/belfry-token')).text()}
      theme="auto"
      position="bottom-start"
      badge="unread"
      page-size={50}
      categories="billing,security"
      no-toasts
      className="bell"
    />
  );
}

export function Misused(): ReactElement {
  return (
    <>
      {/* @ts-expect-error: the themes are auto, light and dark */}
      <belfry-inbox theme="blue" />
      {/* @ts-expect-error: page-size is a number */}
      <belfry-inbox page-size="many" />
    </>
  );
}
