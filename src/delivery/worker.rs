//! The delivery workers: claim due deliveries, decide each again against the state now
//! (read, seen, muted, reachable), perform it on its channel, and record every step through
//! the appender. A worker killed between the provider's "accepted" and the recorded outcome
//! leaves its lease to expire; the delivery is then tried again with the same delivery id,
//! which is the idempotency key receivers drop duplicates by: at least once, honestly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::email::EmailChannel;
use super::endpoints;
use super::links::LinkSigner;
use super::schedule::{self, Due};
use super::webhook::WebhookChannel;
use super::{Channel as _, Contact, DigestBody, DigestEntry, Message, Outcome};
use crate::clock::Clock;
use crate::domain::delivery::{on_due, DueState, OnDue, RecordDelivery, RetryPolicy, Step};
use crate::domain::digest::{digest_stream, DigestId};
use crate::domain::endpoint::{ChangeEndpoint, EndpointChange, EndpointName};
use crate::domain::event::{notification_stream, DeliveryRef, Event, NotificationCreated};
use crate::domain::quiet::QuietPolicy;
use crate::domain::{
    Body, Category, Channel, Command, Content, DeliveryId, NotificationId, Payload, Priority,
    Title, UserId,
};
use crate::engine::Engine;
use crate::eventlog::{Db, Metadata};
use crate::metrics::Metrics;
use crate::projections::read;

/// The channels this server delivers to: email when SMTP is configured, and the webhook
/// endpoints, each for its categories (the first that takes a category gets its deliveries).
#[derive(Default, Clone)]
pub struct Channels {
    pub email: Option<Arc<EmailChannel>>,
    pub webhooks: Vec<Arc<WebhookChannel>>,
}

impl Channels {
    fn webhook_for(&self, category: &Category) -> Option<&WebhookChannel> {
        self.webhooks
            .iter()
            .map(Arc::as_ref)
            .find(|w| w.endpoint().accepts(category))
    }

    /// The external channels configured here, for people's preferences panels.
    pub fn configured(&self) -> Vec<Channel> {
        let mut channels = Vec::new();
        if self.email.is_some() {
            channels.push(Channel::Email);
        }
        if !self.webhooks.is_empty() {
            channels.push(Channel::Webhook);
        }
        channels
    }
}

/// Where people's contact points come from.
pub trait Directory: Send + Sync {
    fn contact<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, anyhow::Result<Option<Contact>>>;
}

/// The recipient directory kept beside the log ([`crate::recipients`]).
pub struct RecipientDirectory(pub Db);

impl Directory for RecipientDirectory {
    fn contact<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, anyhow::Result<Option<Contact>>> {
        Box::pin(crate::recipients::contact(&self.0, user))
    }
}

/// How the workers of one node run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this node's claims; unique per process.
    pub node: String,
    /// How long a claim holds before another worker may try the delivery again.
    pub lease: Duration,
    /// Deliveries claimed at once, and attempted concurrently.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// The longest a worker waits before looking for due deliveries again when nothing
    /// wakes it (a due time on another node's clock, a lease that expires).
    pub idle_check: Duration,
    /// What people's quiet hours hold back.
    pub quiet: QuietPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            node: format!("node-{}", uuid::Uuid::new_v4().simple()),
            lease: Duration::from_secs(60),
            concurrency: 16,
            retry: RetryPolicy::default(),
            idle_check: Duration::from_secs(5),
            quiet: QuietPolicy::default(),
        }
    }
}

/// How often the workers measure the due backlog for the metrics.
const BACKLOG_EVERY: Duration = Duration::from_secs(1);

/// One node's delivery workers.
pub struct Deliverer {
    pub engine: Engine,
    pub metrics: Metrics,
    pub channels: Channels,
    pub directory: Arc<dyn Directory>,
    /// Signs the one-click unsubscribe link of each email, when the server has a public URL.
    pub links: Option<LinkSigner>,
    /// Where people manage their notification preferences in the product's app
    /// (`preferences_url`): linked from every email, carried in webhook bodies.
    pub preferences_url: Option<String>,
    pub clock: Arc<dyn Clock>,
    /// Rung when another node appends (Postgres `NOTIFY`): it may have planned deliveries
    /// due at once.
    pub remote: Arc<Notify>,
    pub config: WorkerConfig,
}

impl Deliverer {
    /// Runs until `stop` fires: keeps up to `concurrency` attempts in flight, claiming more
    /// as slots free up (a quarter of them at a time, so one slow attempt holds up nothing
    /// and a claim is shared by several), and otherwise sleeps until the log moves (a new
    /// send may be due at once), the next due time, or `idle_check`. A slot is the attempt
    /// itself: it frees once the channel has answered, while the outcome is being recorded.
    /// On `stop` it claims nothing more and lets the attempts in flight finish and record
    /// their outcome.
    pub async fn run(self, stop: CancellationToken) {
        let this = Arc::new(self);
        let mut doorbell = this.engine.doorbell();
        let slots = this.config.concurrency.max(1);
        let refill = (slots / 4).max(1);
        let permits = Arc::new(Semaphore::new(slots));
        let freed = Arc::new(Notify::new());
        // Each attempt is a task of its own, so it moves on while this loop claims.
        let mut in_flight = JoinSet::new();
        let mut measured: Option<std::time::Instant> = None;
        loop {
            if stop.is_cancelled() {
                while in_flight.join_next().await.is_some() {}
                return;
            }
            let now = this.clock.now();
            if measured.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
                measured = Some(std::time::Instant::now());
                if let Ok((due, oldest)) = schedule::backlog(this.engine.db(), now).await {
                    let waited = oldest.map_or(0, |oldest| (now - oldest).num_seconds().max(0));
                    this.metrics.delivery_backlog(due, waited);
                }
            }
            let free = permits.available_permits();
            let mut next = None;
            if free >= refill || free == slots {
                // Reads first: most appends plan no delivery, and on SQLite a claim would
                // take the appender's one writer after every one of them.
                next = match schedule::next_due(this.engine.db(), now).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "could not read the next due time"
                        );
                        Some(now)
                    }
                };
                if next.is_some_and(|next| next <= now) {
                    match schedule::claim(
                        this.engine.db(),
                        &this.config.node,
                        now,
                        this.config.lease,
                        free,
                    )
                    .await
                    {
                        Ok(claimed) => {
                            let full = claimed.len() == free;
                            for due in claimed {
                                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                                    // Only this loop takes permits, and it took no more than
                                    // it counted: the claim's lease expires and it is due again.
                                    break;
                                };
                                let slot = Slot {
                                    _permit: permit,
                                    freed: Arc::clone(&freed),
                                };
                                let this = Arc::clone(&this);
                                in_flight.spawn(async move { this.attempt(due, slot).await });
                            }
                            if full {
                                continue;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(
                                error = format!("{e:#}"),
                                "could not claim due deliveries"
                            );
                        }
                    }
                }
            }
            let idle = chrono::Duration::from_std(this.config.idle_check)
                .unwrap_or(chrono::Duration::seconds(5));
            let wake = match next {
                Some(next) if next > now => next.min(now + idle),
                _ => now + idle,
            };
            let waiting = permits.available_permits() > 0;
            tokio::select! {
                () = freed.notified() => {}
                () = stop.cancelled() => {}
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a delivery attempt panicked; its lease will expire and it is tried again");
                    }
                }
                _ = doorbell.changed(), if waiting => {}
                () = this.remote.notified(), if waiting => {}
                () = this.clock.sleep_until(wake), if waiting => {}
                // Never longer than `idle_check` in real time, whatever the clock does.
                () = tokio::time::sleep(this.config.idle_check), if waiting => {}
            }
        }
    }

    /// One attempt in flight; a failure to read or record leaves the lease to expire.
    async fn attempt(&self, due: Due, slot: Slot) {
        let id = due.delivery_id;
        if let Err(e) = self.perform(due, slot).await {
            tracing::warn!(delivery = %id, error = format!("{e:#}"), "delivery step failed; its lease will expire and it is tried again");
        }
    }

    /// Decides one claimed delivery again and performs it.
    async fn perform(&self, due: Due, slot: Slot) -> anyhow::Result<()> {
        let db = self.engine.db();
        let delivery = DeliveryRef {
            delivery_id: due.delivery_id,
            notification_id: due.notification_id,
            recipient: due.recipient.clone(),
            channel: due.channel,
            digest_id: due.digest_id,
        };
        let webhook = match due.channel {
            Channel::Webhook => self.channels.webhook_for(&due.category),
            _ => None,
        };
        // Independent reads, made at once.
        let contact = async {
            match due.channel {
                Channel::Email => self.directory.contact(&due.recipient).await,
                _ => Ok(None),
            }
        };
        let log = self.engine.log();
        let endpoint = async {
            match webhook {
                Some(w) => endpoints::state(&log, w.endpoint().name()).await.map(Some),
                None => Ok(None),
            }
        };
        // A digest's own delivery is never gathered into another.
        let digest_setting = async {
            match due.digest_id {
                None => read::digest_setting(db, &due.recipient, &due.category, due.channel).await,
                Some(_) => Ok(None),
            }
        };
        let ((created, digest), entry, preferences, quiet_hours, digest_setting, contact, endpoint) =
            tokio::try_join!(
                self.subject(&due),
                read::notification(db, &due.recipient, due.notification_id),
                read::preferences(db, &due.recipient),
                read::quiet_hours(db, &due.recipient),
                digest_setting,
                contact,
                endpoint,
            )?;
        // What holds back quiet hours gathers into digests: `urgent` and `critical` go out.
        let held = self.config.quiet.holds(&created.content);
        let now = self.clock.now();
        // Read in the person's zone now, not the one they had when it was planned.
        let quiet_until = match quiet_hours {
            Some((hours, zone)) if held => hours.quiet_until(zone, now),
            _ => None,
        };
        let digest_closes = match digest_setting {
            Some((schedule, zone)) if held => Some(schedule.closes_after(zone, now)),
            _ => None,
        };
        let muted = preferences.into_iter().any(|(category, channel, on)| {
            !on && category == due.category && channel == due.channel
        });
        let reachable = match due.channel {
            Channel::Email => {
                self.channels.email.is_some() && contact.as_ref().is_some_and(|c| c.email.is_some())
            }
            Channel::Webhook => webhook.is_some(),
            _ => false,
        };
        let state = DueState {
            unless: due.unless,
            read: entry.as_ref().is_some_and(|e| e.read_at.is_some()),
            seen: entry.as_ref().is_some_and(|e| e.seen_at.is_some()),
            muted,
            critical: created.content.critical,
            reachable,
            quiet_until,
            expired: created.expires_at.is_some_and(|t| t <= now),
            digest_closes,
        };
        let channel = due.channel.as_str();
        match on_due(&state) {
            OnDue::Attempt => {}
            OnDue::Skip(reason) => {
                self.metrics.delivery(channel, "skipped");
                let step = Step::Skipped {
                    reason,
                    category: due.category.clone(),
                };
                return self.record(&delivery, step).await;
            }
            OnDue::Defer(until, reason) => {
                self.metrics.delivery(channel, "deferred");
                return self
                    .record(&delivery, Step::Deferred { until, reason })
                    .await;
            }
            OnDue::Digest(closes_at) => {
                self.metrics.delivery(channel, "digested");
                let step = Step::Digested {
                    digest_id: DigestId::of(&due.recipient, &due.category, due.channel, closes_at),
                    closes_at,
                    category: due.category.clone(),
                    sent_at: created.at,
                };
                return self.record(&delivery, step).await;
            }
        }
        let disabled = webhook
            .zip(endpoint.as_ref())
            .and_then(|(w, state)| endpoints::disabled_error(w.endpoint().name(), state));
        if let Some(error) = disabled {
            self.metrics.delivery(channel, "failed");
            let step = Step::Failed {
                attempt: due.attempts,
                error,
                retry_at: None,
            };
            self.record(&delivery, step).await?;
            return Ok(());
        }
        let attempt = due.attempts + 1;
        let begun = self
            .execute(
                Command::RecordDelivery(RecordDelivery {
                    delivery: delivery.clone(),
                    step: Step::Attempt { attempt },
                    at: self.clock.now(),
                }),
                "the start of an attempt",
            )
            .await?;
        if !begun {
            // Settled since it was claimed (its notification expired, or another worker's
            // late outcome): nothing is sent.
            return Ok(());
        }
        let contact = contact.unwrap_or_default();
        let unsubscribe = match (due.channel, &self.links) {
            (Channel::Email, Some(links)) => {
                Some(links.unsubscribe_url(&due.recipient, &due.category))
            }
            _ => None,
        };
        let message = Message {
            delivery_id: due.delivery_id.as_uuid(),
            notification_id: due.notification_id,
            recipient: &due.recipient,
            content: &created.content,
            contact: &contact,
            sent_at: created.at,
            attempt_at: self.clock.now(),
            preferences_url: self.preferences_url.as_deref(),
            unsubscribe_url: unsubscribe.as_deref(),
            digest: digest.as_ref(),
        };
        let started = std::time::Instant::now();
        let outcome = match due.channel {
            Channel::Email => match &self.channels.email {
                Some(email) => email.deliver(&message).await,
                None => Outcome::Permanent {
                    error: "email is not configured on this server".to_owned(),
                },
            },
            Channel::Webhook => match webhook {
                Some(webhook) => webhook.deliver(&message).await,
                None => Outcome::Permanent {
                    error: format!("no webhook endpoint takes the category {}", due.category),
                },
            },
            other => Outcome::Permanent {
                error: format!("the {other} channel is not available"),
            },
        };
        self.metrics
            .delivery_attempt(channel, started.elapsed().as_secs_f64());
        // The channel has answered: the next attempt may begin while this one is recorded.
        drop(slot);
        let at = self.clock.now();
        let gone = match (&outcome, webhook) {
            (Outcome::Gone { error }, Some(webhook)) => {
                Some((webhook.endpoint().name().clone(), error.clone()))
            }
            _ => None,
        };
        let step = match outcome {
            Outcome::Accepted { provider_id } => Step::Succeeded {
                attempt,
                provider_id,
            },
            Outcome::Transient { error, retry_after } => Step::Failed {
                attempt,
                retry_at: self.config.retry.next(attempt, at, retry_after, jitter()),
                error,
            },
            Outcome::Permanent { error } | Outcome::Gone { error } => Step::Failed {
                attempt,
                error,
                retry_at: None,
            },
        };
        self.metrics.delivery(
            channel,
            match &step {
                Step::Succeeded { .. } => "succeeded",
                Step::Failed {
                    retry_at: Some(_), ..
                } => "retrying",
                _ => "failed",
            },
        );
        // The endpoint is disabled before the delivery's failure is recorded: whoever sees
        // the failure sees the endpoint disabled too.
        if let Some((endpoint, error)) = gone {
            self.disable(endpoint, due.delivery_id, error).await?;
        }
        self.record(&delivery, step).await
    }

    /// What a delivery sends: its notification, or for a digest's delivery the digest's
    /// heading and the notifications it lists.
    async fn subject(
        &self,
        due: &Due,
    ) -> anyhow::Result<(NotificationCreated, Option<DigestBody>)> {
        match due.digest_id {
            None => Ok((self.created(due.notification_id).await?, None)),
            Some(id) => {
                let (heading, body) = self.digest(due, id).await?;
                Ok((heading, Some(body)))
            }
        }
    }

    /// A closed digest: the notifications its `digest.closed` names, each as it was sent,
    /// and a heading that counts them.
    async fn digest(
        &self,
        due: &Due,
        id: DigestId,
    ) -> anyhow::Result<(NotificationCreated, DigestBody)> {
        let events = self.engine.log().read_stream(&digest_stream(id)).await?;
        let closed = events
            .iter()
            .find_map(|recorded| match recorded.decode() {
                Ok(Some(Event::DigestClosed(closed))) => Some(closed),
                _ => None,
            })
            .with_context(|| format!("digest {id} has no digest.closed"))?;
        let mut items = Vec::with_capacity(closed.notifications.len());
        for notification in &closed.notifications {
            let created = self.created(*notification).await?;
            items.push(DigestEntry {
                notification_id: *notification,
                content: created.content,
                sent_at: created.at,
            });
        }
        let count = items.len();
        let noun = if count == 1 {
            "notification"
        } else {
            "notifications"
        };
        let title = Title::parse(&format!("{count} new {noun}: {}", due.category))
            .map_err(|e| anyhow::anyhow!("digest {id} has no title: {e}"))?;
        let content = Content {
            category: due.category.clone(),
            priority: Priority::Normal,
            critical: false,
            title,
            body: Body::default(),
            data: Payload::default(),
            action_url: None,
            icon: None,
        };
        let heading = NotificationCreated {
            notification_id: id.as_notification(),
            recipient: due.recipient.clone(),
            content: Arc::new(content),
            at: closed.at,
            reason: None,
            quiet: false,
            expires_at: None,
        };
        let body = DigestBody {
            digest_id: id,
            category: due.category.clone(),
            closes_at: closed.closes_at,
            items,
        };
        Ok((heading, body))
    }

    /// The notification as it was sent, from the head of its stream (a suppressed one is in
    /// no inbox, and its deliveries are still made).
    async fn created(&self, notification: NotificationId) -> anyhow::Result<NotificationCreated> {
        let first = self
            .engine
            .log()
            .read_stream_first(&notification_stream(notification))
            .await?
            .with_context(|| format!("notification {notification} has no events"))?;
        match first.decode()? {
            Some(Event::NotificationSent(e) | Event::NotificationSuppressed(e)) => Ok(e),
            other => anyhow::bail!(
                "notification {} starts with {:?}, not its creation",
                notification,
                other.map(|e| e.type_name())
            ),
        }
    }

    async fn record(&self, delivery: &DeliveryRef, step: Step) -> anyhow::Result<()> {
        let command = Command::RecordDelivery(RecordDelivery {
            delivery: delivery.clone(),
            step,
            at: self.clock.now(),
        });
        let what = format!("a step of delivery {}", delivery.delivery_id);
        self.execute(command, &what).await.map(drop)
    }

    /// Records that an endpoint answered 410 Gone: it takes no more deliveries until an
    /// operator enables it again.
    async fn disable(
        &self,
        endpoint: EndpointName,
        delivery_id: DeliveryId,
        error: String,
    ) -> anyhow::Result<()> {
        tracing::warn!(endpoint = %endpoint, delivery = %delivery_id, "a webhook endpoint answered 410 Gone; it is disabled until an admin enables it");
        let command = Command::ChangeEndpoint(ChangeEndpoint {
            endpoint,
            change: EndpointChange::Gone { delivery_id, error },
            at: self.clock.now(),
        });
        self.execute(command, "that a webhook endpoint is gone")
            .await
            .map(drop)
    }

    /// Appends what a worker decided, as this node's worker; whether it changed anything.
    async fn execute(&self, command: Command, what: &str) -> anyhow::Result<bool> {
        let metadata = Metadata {
            actor: Some(format!("worker:{}", self.config.node)),
            ..Metadata::default()
        };
        let outcome = self
            .engine
            .execute(command, metadata)
            .await
            .map_err(|e| anyhow::anyhow!("could not record {what}: {e:?}"))?;
        Ok(!outcome.events.is_empty())
    }
}

/// One of a node's `concurrency` attempt slots, held from the claim until the channel
/// answers; giving it back wakes the claiming loop.
struct Slot {
    _permit: OwnedSemaphorePermit,
    freed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.freed.notify_one();
    }
}

/// A number in `[0, 1)` for the backoff's jitter, drawn here so the retry policy stays pure.
fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75;
    bits as f64 / (1u64 << 53) as f64
}
