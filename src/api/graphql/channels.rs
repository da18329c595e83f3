//! The channels this server delivers on, so an inbox offers switches only for those: a switch
//! for a channel nobody delivers would change nothing.

use async_graphql::{Context, Object, Result};

use super::types::Channel;
use super::{api, viewer};

#[derive(Default)]
pub struct ChannelQuery;

#[Object]
impl ChannelQuery {
    /// The channels notifications are delivered on here: always `IN_APP`, `EMAIL` when SMTP
    /// is configured and `WEBHOOK` when a webhook endpoint is. Preferences for the others are
    /// kept but have no effect on this server.
    async fn delivery_channels(&self, ctx: &Context<'_>) -> Result<Vec<Channel>> {
        viewer(ctx)?;
        Ok(api(ctx)
            .channels
            .iter()
            .copied()
            .map(Channel::from)
            .collect())
    }
}
