//! The engine: takes commands, decides them against the inline projections and appends the
//! resulting events through the appender (group commit), then rings the doorbell.

mod appender;
mod handle;

use std::ops::{Deref, Range};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::{Command, DomainError};
use crate::eventlog::doorbell::{Committed, Doorbell};
use crate::eventlog::{Db, EventLog, Metadata, RecordedEvent};
use crate::metrics::Metrics;
use crate::projections::{self, state::Delivery};

/// How the appender batches (`app::engine_config` builds it from the settings, where the
/// defaults are).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The most commands one append transaction takes.
    pub batch_max: usize,
    /// Commands waiting for the appender; senders wait when it is full.
    pub queue_capacity: usize,
    /// Where batch sizes and latency are recorded.
    pub metrics: Metrics,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The events appended (none when the command changed nothing or was a retry).
    pub events: CommittedEvents,
    /// For sends: the notification created for each recipient.
    pub deliveries: Vec<Delivery>,
    /// For sends: this was a retry of an earlier send with the same idempotency key, and
    /// `deliveries` are that send's.
    pub replayed: bool,
    /// For a send scheduled for later: its id (an earlier one's when `replayed`).
    pub scheduled: Option<crate::domain::schedule::ScheduleId>,
}

/// Some consecutive events of one committed batch, shared with the batch rather than copied
/// (a broadcast's outcome would otherwise copy 100,000 events). Reads as a slice.
#[derive(Clone, Default)]
pub struct CommittedEvents {
    batch: Arc<Vec<RecordedEvent>>,
    range: Range<usize>,
}

impl CommittedEvents {
    /// `batch[range]`; a range outside the batch reads as no events.
    pub fn new(batch: Arc<Vec<RecordedEvent>>, range: Range<usize>) -> Self {
        Self { batch, range }
    }
}

impl Deref for CommittedEvents {
    type Target = [RecordedEvent];

    fn deref(&self) -> &[RecordedEvent] {
        self.batch.get(self.range.clone()).unwrap_or_default()
    }
}

impl PartialEq for CommittedEvents {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for CommittedEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Why a command did not go through. Domain rejections and infrastructure failures differ.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rejected(#[from] DomainError),
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The database could not be reached; the cause was logged. Worth retrying shortly.
    #[error("the database is unreachable")]
    Unavailable,
    /// The cause was logged where it happened; it is not shown to callers.
    #[error("internal error")]
    Internal,
}

/// A queued command and the channel its caller waits on for the outcome.
struct Job {
    command: Box<Command>,
    metadata: Metadata,
    reply: oneshot::Sender<Result<Outcome, CommandError>>,
}

/// A handle to a running engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    db: Db,
    jobs: mpsc::Sender<Job>,
    doorbell: Doorbell,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Engine {
    /// Starts the appender on a migrated database whose projections are current.
    /// It stops when `cancel` fires, after finishing every command already queued.
    pub async fn start(
        db: Db,
        config: EngineConfig,
        cancel: CancellationToken,
    ) -> anyhow::Result<(Engine, JoinHandle<()>)> {
        let problems = projections::ensure(&db).await?;
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "{}; run `belfry replay` to rebuild before serving",
                list.join("; ")
            );
        }
        let head = EventLog::new(db.clone()).head().await?;
        let doorbell = Doorbell::new(head);
        let (jobs, rx) = mpsc::channel(config.queue_capacity.max(1));
        let task = tokio::spawn(appender::run(
            db.clone(),
            rx,
            doorbell.clone(),
            config.batch_max.max(1),
            config.metrics.clone(),
            cancel,
        ));
        config.metrics.head(head);
        Ok((Engine { db, jobs, doorbell }, task))
    }

    /// Decides and appends one command; returns once its events are committed (or it was
    /// refused). Queries made after this returns see its effect.
    pub async fn execute(
        &self,
        command: Command,
        metadata: Metadata,
    ) -> Result<Outcome, CommandError> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            command: Box::new(command),
            metadata,
            reply: tx,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| CommandError::ShuttingDown)?;
        rx.await.map_err(|_| CommandError::ShuttingDown)?
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn log(&self) -> EventLog {
        EventLog::new(self.db.clone())
    }

    /// The newest committed head, updated after every batch this engine commits.
    pub fn doorbell(&self) -> watch::Receiver<i64> {
        self.doorbell.subscribe()
    }

    /// The batch this engine committed last, for a reader that follows the log.
    pub fn committed(&self) -> Committed {
        self.doorbell.committed()
    }
}
