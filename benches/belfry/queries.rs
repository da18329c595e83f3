//! Scenario 5.
use crate::Common;
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
}
pub async fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
