//! The webhook endpoints' states as the log has them: each endpoint's stream, folded. An
//! endpoint that answered 410 Gone stays disabled, on every node, until an operator enables
//! it again (`enableWebhookEndpoint`, `belfry webhooks enable`).

use crate::domain::endpoint::{endpoint_stream, EndpointName, EndpointState};
use crate::eventlog::EventLog;

/// One endpoint's state, read from its stream (a few facts at most).
pub async fn state(log: &EventLog, name: &EndpointName) -> anyhow::Result<EndpointState> {
    let mut events = Vec::new();
    for recorded in log.read_stream(&endpoint_stream(name)).await? {
        events.extend(recorded.decode()?);
    }
    Ok(EndpointState::of(&events))
}

/// Why a delivery to a disabled endpoint fails without an attempt.
pub fn disabled_error(name: &EndpointName, state: &EndpointState) -> Option<String> {
    state.disabled.as_ref().map(|d| {
        format!(
            "the webhook endpoint {name} is disabled: it answered delivery {} with {:?} at {}; \
             an admin can enable it again (enableWebhookEndpoint, or belfry webhooks enable {name}) \
             and then retry this delivery",
            d.delivery_id,
            d.error,
            d.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    })
}
