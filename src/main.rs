use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    reel::cli::Cli::parse().run().await
}
