//! Handling one queued command inside a batch: load its decision state from the inline
//! projections, decide, append, and fold the new events into the projections at once so the
//! next command of the batch decides against them.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::{CommandError, CommittedEvents, Outcome};
use crate::domain::delivery::Step;
use crate::domain::endpoint::{endpoint_stream, EndpointState};
use crate::domain::event::Event;
use crate::domain::schedule::{
    schedule_stream, PublishScheduled, Schedule, ScheduleId, ScheduleSend, ScheduleTarget,
};
use crate::domain::{notification, Channel, Command, Decide, DomainError, SuppressReason, UserId};
use crate::eventlog::batch::Batch;
use crate::eventlog::{Metadata, RecordedEvent};
use crate::projections::state::{self, Delivery};
use crate::projections::{self, Target};

/// What the commands of one batch share: who muted each category and whether anyone has quiet
/// hours, read once per batch (and again after a change to them).
#[derive(Default)]
pub(super) struct BatchCache {
    muters: HashMap<String, state::Muters>,
    /// Whether anyone has quiet hours at all, read once per batch.
    anyone_quiet: Option<bool>,
}

/// What a command decided, before its batch commits: its events are `events` of the batch.
pub(super) struct Decided {
    events: Range<usize>,
    deliveries: Vec<Delivery>,
    replayed: bool,
    scheduled: Option<ScheduleId>,
}

impl Decided {
    /// The outcome, once `batch` (every event of the batch, as committed) is written.
    pub(super) fn outcome(self, batch: &Arc<Vec<RecordedEvent>>) -> Outcome {
        Outcome {
            events: CommittedEvents::new(Arc::clone(batch), self.events),
            deliveries: self.deliveries,
            replayed: self.replayed,
            scheduled: self.scheduled,
        }
    }
}

/// Folds the events pushed since the last call into the live projections, in one set-based
/// pass. Called before every decision-state read that could depend on them, and once before
/// the batch commits, so a batch of sends writes its projection rows in a few statements.
pub(super) async fn project(batch: &mut Batch) -> anyhow::Result<()> {
    let (tx, events) = batch.unprojected();
    if events.is_empty() {
        return Ok(());
    }
    projections::apply(tx, &Target::live(), events).await
}

/// Decides one command against the batch so far and pushes its events. `Err` is an
/// infrastructure failure, which fails the whole batch; `Ok(Err(_))` a refusal of this
/// command alone.
pub(super) async fn handle(
    batch: &mut Batch,
    cache: &mut BatchCache,
    command: Command,
    metadata: Metadata,
) -> anyhow::Result<Result<Decided, CommandError>> {
    if !matches!(command, Command::Send(_)) {
        // These read the inbox or the preferences, which must show every earlier command.
        project(batch).await?;
    }
    let decided = match &command {
        Command::Send(cmd) => return send(batch, cache, cmd, metadata).await,
        Command::Schedule(cmd) => return schedule(batch, cmd, metadata).await,
        Command::PublishScheduled(cmd) => return publish(batch, cache, cmd, metadata).await,
        Command::CancelScheduled(cmd) => {
            let id = match &cmd.target {
                ScheduleTarget::Id(id) => Some(*id),
                ScheduleTarget::Key(key) => state::scheduled_by_key(batch.tx(), key.as_str())
                    .await?
                    .map(|k| k.id),
            };
            let current = match id {
                Some(id) => Schedule::of(&batch.stream_events(&schedule_stream(id)).await?),
                None => None,
            };
            cmd.decide(&current)
        }
        // Writes the directory rows in this transaction, so they and the events commit together.
        Command::Recipients(cmd) => Ok(crate::recipients::decide_in(batch.tx(), cmd).await?),
        Command::Change(cmd) => {
            let current = state::notification(batch.tx(), cmd.id).await?;
            cmd.decide(&current)
        }
        Command::Expire(cmd) => {
            let current = notification::ExpireState {
                notification: state::notification(batch.tx(), cmd.id).await?,
                waiting: state::waiting_deliveries(batch.tx(), cmd.id).await?,
            };
            cmd.decide(&current)
        }
        Command::MarkAll(cmd) => {
            let items = state::inbox_items(
                batch.tx(),
                &cmd.user,
                cmd.mark,
                cmd.category.as_ref(),
                cmd.up_to_position,
            )
            .await?;
            cmd.decide(&items)
        }
        Command::SetPreferences(cmd) => {
            let current = state::preferences(batch.tx(), &cmd.user).await?;
            cmd.decide(&current)
        }
        Command::SetQuietHours(cmd) => {
            let current = state::quiet_hours(batch.tx(), &cmd.user).await?;
            cmd.decide(&current)
        }
        Command::SetDigest(cmd) => {
            let current =
                state::digest_setting(batch.tx(), &cmd.user, &cmd.category, cmd.channel).await?;
            cmd.decide(&current)
        }
        Command::CloseDigest(cmd) => {
            let current = state::open_digest(batch.tx(), cmd.digest_id).await?;
            cmd.decide(&current)
        }
        Command::RecordDelivery(cmd) => {
            let current = state::delivery_status(batch.tx(), cmd.delivery.delivery_id).await?;
            if cmd.step.is_outcome() {
                state::release_lease(batch.tx(), cmd.delivery.delivery_id).await?;
            }
            match &cmd.step {
                // The digest closed while this was being decided: nothing is recorded, and
                // the delivery, still due and no longer claimed, joins the next one.
                Step::Digested { digest_id, .. }
                    if state::digest_closed(batch.tx(), *digest_id).await? =>
                {
                    Ok(Vec::new())
                }
                _ => cmd.decide(&current),
            }
        }
        Command::ChangeEndpoint(cmd) => {
            let stream = endpoint_stream(&cmd.endpoint);
            let current = EndpointState::of(&batch.stream_events(&stream).await?);
            cmd.decide(&current)
        }
    };
    let events = match decided {
        Ok(events) => events,
        Err(rejected) => return Ok(Err(rejected.into())),
    };
    let from = batch.len();
    for event in events {
        batch
            .push_event(event.stream_id(), event, metadata.clone(), None)
            .await?;
    }
    match command {
        // Later sends of this batch read who muted what from the preferences table, and who
        // is in quiet hours from theirs.
        Command::SetPreferences(_) => {
            project(batch).await?;
            cache.muters.clear();
        }
        Command::SetQuietHours(_) => {
            project(batch).await?;
            cache.anyone_quiet = None;
        }
        _ => {}
    }
    Ok(Ok(Decided {
        events: from..batch.len(),
        deliveries: Vec::new(),
        replayed: false,
        scheduled: None,
    }))
}

/// A send for later: one `send.scheduled`, or the earlier one's answer for a retry.
async fn schedule(
    batch: &mut Batch,
    cmd: &ScheduleSend,
    mut metadata: Metadata,
) -> anyhow::Result<Result<Decided, CommandError>> {
    let earlier = match &cmd.send.idempotency_key {
        Some(key) => {
            project(batch).await?;
            match state::scheduled_by_key(batch.tx(), key.as_str()).await? {
                Some(keyed) => Some(Ok(keyed)),
                None => state::keyed_send(batch.tx(), key.as_str())
                    .await?
                    .map(|_| Err(())),
            }
        }
        None => None,
    };
    let events = match cmd.decide(&earlier) {
        Ok(events) => events,
        Err(rejected) => return Ok(Err(rejected.into())),
    };
    if events.is_empty() {
        return Ok(Ok(Decided {
            events: 0..0,
            deliveries: Vec::new(),
            replayed: true,
            scheduled: earlier.and_then(Result::ok).map(|k| k.id),
        }));
    }
    if let Some(key) = &cmd.send.idempotency_key {
        metadata.idempotency_key = Some(key.as_str().to_owned());
    }
    let from = batch.len();
    for event in events {
        // A fresh stream: its id was just made.
        batch
            .push_event(event.stream_id(), event, metadata.clone(), Some(1))
            .await?;
    }
    Ok(Ok(Decided {
        events: from..batch.len(),
        deliveries: Vec::new(),
        replayed: false,
        scheduled: Some(cmd.id),
    }))
}

/// A scheduled send whose time has come: `send.published`, then the send itself, decided
/// now, in one transaction. Nothing for one already published or cancelled.
async fn publish(
    batch: &mut Batch,
    cache: &mut BatchCache,
    cmd: &PublishScheduled,
    metadata: Metadata,
) -> anyhow::Result<Result<Decided, CommandError>> {
    let stream = schedule_stream(cmd.id);
    let history = batch.stream_events(&stream).await?;
    let current = Schedule::of(&history);
    let events = match cmd.decide(&current) {
        Ok(events) => events,
        Err(rejected) => return Ok(Err(rejected.into())),
    };
    let (Some(current), false) = (current, events.is_empty()) else {
        return Ok(Ok(Decided {
            events: 0..0,
            deliveries: Vec::new(),
            replayed: false,
            scheduled: Some(cmd.id),
        }));
    };
    let from = batch.len();
    let version = i64::try_from(history.len()).unwrap_or(i64::MAX);
    for (i, event) in events.into_iter().enumerate() {
        let known = version + 1 + i64::try_from(i).unwrap_or(0);
        batch
            .push_event(stream.clone(), event, metadata.clone(), Some(known))
            .await?;
    }
    let sent = send(batch, cache, &current.scheduled.send(cmd.at), metadata).await?;
    Ok(sent.map(|decided| Decided {
        events: from..batch.len(),
        scheduled: Some(cmd.id),
        ..decided
    }))
}

async fn send(
    batch: &mut Batch,
    cache: &mut BatchCache,
    cmd: &notification::SendNotification,
    mut metadata: Metadata,
) -> anyhow::Result<Result<Decided, CommandError>> {
    let previous = match &cmd.idempotency_key {
        Some(key) => {
            // An earlier send of this batch may have used the same key.
            project(batch).await?;
            let previous = state::keyed_send(batch.tx(), key.as_str()).await?;
            // A scheduled send's key is never a send's made at once.
            if previous.is_none()
                && state::scheduled_by_key(batch.tx(), key.as_str())
                    .await?
                    .is_some()
            {
                return Ok(Err(DomainError::IdempotencyConflict(key.clone()).into()));
            }
            previous
        }
        None => None,
    };
    let recipients: Vec<UserId> = cmd.deliveries.iter().map(|(_, r)| r.clone()).collect();
    let category = cmd.content.category.as_str();
    if !cache.muters.contains_key(category) {
        let muters = state::muters(batch.tx(), &cmd.content.category).await?;
        cache.muters.insert(category.to_owned(), muters);
    }
    let muters = cache.muters.get(category);
    let muted_on = |channel| {
        muters
            .map(|m| state::muted_among(m, &recipients, channel))
            .unwrap_or_default()
    };
    let muted_channels = cmd
        .routes
        .iter()
        .flat_map(|route| {
            muted_on(route.channel)
                .into_iter()
                .map(move |user| (user, route.channel))
        })
        .collect();
    let recent = match cmd.throttle {
        Some(throttle) if !cmd.content.critical => {
            // Earlier sends of this batch count: fold them into the inbox first.
            project(batch).await?;
            state::recent_counts(
                batch.tx(),
                &cmd.content.category,
                &recipients,
                cmd.at - throttle.window(),
                cmd.at,
            )
            .await?
        }
        _ => Default::default(),
    };
    let quiet = if cmd.quiet_hours_hold {
        let anyone = match cache.anyone_quiet {
            Some(anyone) => anyone,
            None => {
                let anyone = state::anyone_has_quiet_hours(batch.tx()).await?;
                cache.anyone_quiet = Some(anyone);
                anyone
            }
        };
        if anyone {
            state::in_quiet_hours(batch.tx(), &recipients, cmd.at).await?
        } else {
            Default::default()
        }
    } else {
        Default::default()
    };
    let decision_state = notification::SendState {
        previous_fingerprint: previous.as_ref().map(|p| p.request_hash.clone()),
        muted: muted_on(Channel::InApp),
        muted_channels,
        recent,
        quiet,
    };
    let events = match cmd.decide(&decision_state) {
        Ok(events) => events,
        Err(rejected) => return Ok(Err(rejected.into())),
    };
    if let (true, Some(previous)) = (events.is_empty(), previous) {
        return Ok(Ok(Decided {
            events: 0..0,
            deliveries: previous.deliveries,
            replayed: true,
            scheduled: None,
        }));
    }
    if let Some(key) = &cmd.idempotency_key {
        metadata.idempotency_key = Some(key.as_str().to_owned());
        metadata.request_hash = Some(cmd.fingerprint());
    }
    batch.reserve(events.len());
    let from = batch.len();
    let mut deliveries = Vec::with_capacity(events.len());
    // Each notification's events (its creation, then its planned deliveries) come together.
    let mut stream: Option<(String, i64)> = None;
    for event in events {
        let delivery = match &event {
            Event::NotificationSent(e) => Some((e.notification_id, e.recipient.clone(), None)),
            Event::NotificationSuppressed(e) => Some((
                e.notification_id,
                e.recipient.clone(),
                Some(e.suppressed_because()),
            )),
            _ => None,
        };
        // Every send starts fresh notification streams: no version lookup.
        let stream_id = event.stream_id();
        let version = match &stream {
            Some((id, version)) if *id == stream_id => version + 1,
            _ => 1,
        };
        stream = Some((stream_id.clone(), version));
        let position = batch
            .push_event(stream_id, event, metadata.clone(), Some(version))
            .await?;
        if let Some((notification_id, recipient, suppressed)) = delivery {
            deliveries.push(Delivery {
                notification_id,
                recipient,
                suppressed: suppressed.is_some(),
                throttled: suppressed == Some(SuppressReason::Throttled),
                position,
            });
        }
    }
    Ok(Ok(Decided {
        events: from..batch.len(),
        deliveries,
        replayed: false,
        scheduled: None,
    }))
}
