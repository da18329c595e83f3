//! The email channel: SMTP through a pooled lettre transport. [`build_email`] turns one
//! attempt into a message without I/O; [`EmailChannel`] sends it and says how it went in the
//! operator's terms.
//!
//! Contact details are personal data and outcomes are recorded in the log, so nothing this
//! module returns or logs carries the recipient's address: a server reply that quotes it has
//! it replaced by `[recipient]`.
//!
//! # Layout
//! - `settings`: the `[smtp]` table, checked, and the transport it describes;
//! - `message`: the email one attempt sends, its headers and its text and HTML parts;
//! - `classify`: what the server's answer means for the delivery.

mod classify;
mod message;
mod settings;
#[cfg(test)]
mod tests;

use std::sync::RwLock;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use self::message::{build_email, BuildError, Originator};
pub use self::settings::{SmtpSettings, SmtpTls};

use self::classify::provider_id;
use super::{Channel, Message, Outcome};

/// The SMTP channel: one pooled transport, shared by every worker.
pub struct EmailChannel {
    originator: Originator,
    /// Kept to start a fresh pool after an attempt was abandoned mid-conversation.
    builder: AsyncSmtpTransportBuilder,
    /// A std lock: held only to clone or replace the transport, never across `.await`.
    transport: RwLock<AsyncSmtpTransport<Tokio1Executor>>,
    /// `host:port`, for errors.
    server: String,
    timeout: Duration,
}

impl EmailChannel {
    /// Checks `settings` and sets up the connection pool; nothing connects until the first
    /// delivery. Must run inside a Tokio runtime (the pool's clean-up task starts here).
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<EmailChannel> {
        let (originator, builder) = settings.prepare()?;
        Ok(EmailChannel {
            originator,
            transport: RwLock::new(builder.clone().build()),
            builder,
            server: format!("{}:{}", settings.host, settings.port()),
            timeout: Duration::from_secs(settings.timeout_secs),
        })
    }

    async fn attempt(&self, message: &Message<'_>) -> Outcome {
        let email = match build_email(&self.originator, message) {
            Ok(email) => email,
            Err(error) => {
                return Outcome::Permanent {
                    error: error.to_string(),
                }
            }
        };
        let recipient = message.contact.email.as_deref().unwrap_or_default();
        let transport = match self.transport.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        // lettre bounds only the connect; a server that stops answering mid-conversation
        // would hold this attempt (and a worker) forever without this.
        match tokio::time::timeout(self.timeout, transport.send(email)).await {
            Ok(Ok(response)) => Outcome::Accepted {
                provider_id: provider_id(&response),
            },
            Ok(Err(error)) => self.classify(&error, recipient),
            Err(_) => {
                // The abandoned connection goes back to its pool in the middle of a
                // command; start a new pool so no later attempt reads its late replies.
                let fresh = self.builder.clone().build();
                match self.transport.write() {
                    Ok(mut guard) => *guard = fresh,
                    Err(poisoned) => *poisoned.into_inner() = fresh,
                }
                Outcome::Transient {
                    error: format!(
                        "the SMTP server {} did not finish answering within {} s (smtp.timeout_secs)",
                        self.server,
                        self.timeout.as_secs()
                    ),
                    retry_after: None,
                }
            }
        }
    }
}

impl Channel for EmailChannel {
    fn deliver<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let started = Instant::now();
            let outcome = self.attempt(message).await;
            tracing::debug!(
                delivery_id = %message.delivery_id,
                notification_id = %message.notification_id,
                server = %self.server,
                outcome = outcome_name(&outcome),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "email attempt"
            );
            outcome
        })
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Accepted { .. } => "accepted",
        Outcome::Transient { .. } => "transient",
        Outcome::Permanent { .. } => "permanent",
        Outcome::Gone { .. } => "gone",
    }
}
