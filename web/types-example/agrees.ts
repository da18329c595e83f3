// The declarations in ../types/ agree with the JSDoc-typed modules they describe: each check
// below fails to compile when one side changes without the other. Types only, nothing runs.

import type * as Client from '../belfry-client.js';
import type * as Element from '../belfry-element.js';
import type * as Entry from '../belfry-inbox.js';
import type * as Declared from '../types/belfry-inbox.js';

/** True only when A and B are the same type (not merely assignable either way). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Check<T extends true> = T;
/** The public members of an instance: a mapped type leaves out `#private` fields. */
type Public<T> = { [K in keyof T]: T[K] };

// The same values are exported.
export type Values = Check<Same<keyof typeof Entry, keyof typeof Declared>>;
export type ClientValues = Check<Same<keyof typeof Client, 'BelfryClient' | 'BelfryError'>>;

// Every type the client module defines for its users.
export type Priority = Check<Same<Client.Priority, Declared.Priority>>;
export type Channel = Check<Same<Client.Channel, Declared.Channel>>;
export type Notification = Check<Same<Client.Notification, Declared.Notification>>;
export type NotificationState = Check<Same<Client.NotificationState, Declared.NotificationState>>;
export type CategoryCount = Check<Same<Client.CategoryCount, Declared.CategoryCount>>;
export type Counts = Check<Same<Client.Counts, Declared.Counts>>;
export type InboxChange = Check<Same<Client.InboxChange, Declared.InboxChange>>;
export type NotificationPage = Check<Same<Client.NotificationPage, Declared.NotificationPage>>;
export type Preference = Check<Same<Client.Preference, Declared.Preference>>;
export type MarkAllResult = Check<Same<Client.MarkAllResult, Declared.MarkAllResult>>;
export type Weekday = Check<Same<Client.Weekday, Declared.Weekday>>;
export type QuietWindow = Check<Same<Client.QuietWindow, Declared.QuietWindow>>;
export type QuietHours = Check<Same<Client.QuietHours, Declared.QuietHours>>;
export type DigestFrequency = Check<Same<Client.DigestFrequency, Declared.DigestFrequency>>;
export type DigestSchedule = Check<Same<Client.DigestSchedule, Declared.DigestSchedule>>;
export type DigestSetting = Check<Same<Client.DigestSetting, Declared.DigestSetting>>;
export type Digests = Check<Same<Client.Digests, Declared.Digests>>;
export type GraphQLError = Check<Same<Client.GraphQLError, Declared.GraphQLError>>;
export type Status = Check<Same<Client.Status, Declared.Status>>;
export type TokenSource = Check<Same<Client.TokenSource, Declared.TokenSource>>;
export type SocketLike = Check<Same<Client.SocketLike, Declared.SocketLike>>;
export type SocketConstructor = Check<Same<Client.SocketConstructor, Declared.SocketConstructor>>;
export type FetchLike = Check<Same<Client.FetchLike, Declared.FetchLike>>;
export type ClientOptions = Check<Same<Client.ClientOptions, Declared.ClientOptions>>;

// The entry point's own type names.
export type EntryTypes = Check<
  Same<
    [Entry.Notification, Entry.NotificationState, Entry.NotificationPage, Entry.InboxChange, Entry.Counts, Entry.Preference, Entry.Status],
    [
      Declared.Notification,
      Declared.NotificationState,
      Declared.NotificationPage,
      Declared.InboxChange,
      Declared.Counts,
      Declared.Preference,
      Declared.Status,
    ]
  >
>;

// BelfryError: constructor, statics, public fields.
export type ErrorConstructor = Check<
  Same<ConstructorParameters<typeof Client.BelfryError>, ConstructorParameters<typeof Declared.BelfryError>>
>;
export type ErrorStatics = Check<Same<Public<typeof Client.BelfryError>, Public<typeof Declared.BelfryError>>>;
export type ErrorFields = Check<Same<Public<Client.BelfryError>, Public<Declared.BelfryError>>>;

// BelfryClient: constructor and every public member. `query` is generic in the declarations
// (`query<T = any>`, the implementation returns `Promise<any>`): its parameters must agree.
type ClientImpl = Public<Client.BelfryClient>;
type ClientDecl = Public<Declared.BelfryClient>;
export type ClientConstructor = Check<
  Same<ConstructorParameters<typeof Client.BelfryClient>, ConstructorParameters<typeof Declared.BelfryClient>>
>;
export type ClientMembers = Check<Same<Omit<ClientImpl, 'query'>, Omit<ClientDecl, 'query'>>>;
export type ClientQuery = Check<Same<Parameters<ClientImpl['query']>, Parameters<ClientDecl['query']>>>;
export type ClientStatics = Check<
  Same<Omit<Public<typeof Client.BelfryClient>, 'prototype'>, Omit<Public<typeof Declared.BelfryClient>, 'prototype'>>
>;

// BelfryInbox: what it adds to HTMLElement, its `client` being each side's BelfryClient (checked
// above). The declared addEventListener overloads narrow HTMLElement's.
type Own<T> = Omit<Public<T>, keyof HTMLElement>;
export type InboxMembers = Check<Same<Omit<Own<Element.BelfryInbox>, 'client'>, Omit<Own<Declared.BelfryInbox>, 'client'>>>;
export type InboxClient = Check<
  Same<
    [Element.BelfryInbox['client'], Declared.BelfryInbox['client']],
    [Client.BelfryClient | undefined, Declared.BelfryClient | undefined]
  >
>;
export type InboxStatics = Check<
  Same<Omit<Public<typeof Element.BelfryInbox>, 'prototype'>, Omit<Public<typeof Declared.BelfryInbox>, 'prototype'>>
>;
export type EntryElement = Check<Same<Public<Entry.BelfryInbox>, Public<Element.BelfryInbox>>>;
