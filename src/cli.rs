//! The `reel` command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use figment::Figment;
use figment::providers::Serialized;

use crate::api::auth::{Authenticator, Claims};
use crate::app::{self, Application};
use crate::client::ReelClient;
use crate::client::commands::{self, UploadCommand};
use crate::config::{Config, StorageBackend};
use crate::delivery::signing::KeyRing;
use crate::model::{Role, UserId};
use crate::telemetry;

/// reel: video ingest and delivery.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// TOML configuration file (environment `REEL_SECTION__KEY` and flags override it).
    #[arg(long, global = true, env = "REEL_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    command: Command,
}

/// Where the client commands (`upload`, `status`, `feed`) send their requests.
#[derive(Debug, Args)]
struct Remote {
    /// Server the client commands talk to.
    #[arg(long, global = true, env = "REEL_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Bearer token for the client commands (mint one with `reel token`).
    #[arg(long, global = true, env = "REEL_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Service(ServiceCommand),
    #[command(flatten)]
    Client(ClientCommand),
}

/// Commands that run or administer reel itself.
#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Serve the HTTP API (and, unless --no-workers, the background workers).
    Serve {
        /// Listen address, e.g. 0.0.0.0:8080.
        #[arg(long)]
        bind: Option<SocketAddr>,
        /// Serve HTTP only; run workers elsewhere with `reel worker`.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run the background workers only.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a bearer token for local use.
    Token {
        /// User id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// Grant the admin (ops) role.
        #[arg(long)]
        admin: bool,
        /// Delivery cohort claim, e.g. `low_conversion`.
        #[arg(long)]
        cohort: Option<String>,
        /// Lifetime, e.g. `30d`, `12h`.
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Print the effective configuration (secrets redacted).
    Config,
    /// Manage the ES256 keys that sign playback URLs (stored in the database).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// `reel keys …`
#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new signing key; older keys keep verifying until removed.
    Rotate,
    /// List the key ids, newest (the signing key) first.
    List,
    /// Remove a key (never the last one): URLs signed with it stop working.
    Remove {
        /// The key id.
        kid: String,
    },
}

/// Commands that talk to a running reel over HTTP.
#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Upload a video; an interrupted upload of the same, unchanged file is resumed.
    Upload {
        /// The video file.
        file: PathBuf,
        /// Wait until the video is ready (or failed) and print its manifest URL.
        #[arg(long)]
        wait: bool,
        /// Parts sent in parallel.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// Longest wait for processing with --wait, e.g. `30m`.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        wait_timeout: Duration,
    },
    /// Print a video's status JSON.
    Status {
        /// The video id.
        video_id: String,
    },
    /// Print the feed, one line per video.
    Feed {
        /// Videos to list (at most 50).
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
}

impl ClientCommand {
    async fn run(self, remote: Remote) -> anyhow::Result<()> {
        let client = ReelClient::new(&remote.server, remote.token)?;
        match self {
            ClientCommand::Upload { file, wait, concurrency, wait_timeout } => {
                let command = UploadCommand { wait, wait_timeout, concurrency: usize::from(concurrency) };
                commands::upload(client, &file, command).await
            }
            ClientCommand::Status { video_id } => commands::status(client, &video_id).await,
            ClientCommand::Feed { limit } => commands::feed(client, limit).await,
        }
    }
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Service(command) => command.run(self.config.as_deref()).await,
            Command::Client(command) => command.run(self.remote).await,
        }
    }
}

impl ServiceCommand {
    async fn run(self, config_file: Option<&Path>) -> anyhow::Result<()> {
        let mut overrides = Figment::new();
        if let ServiceCommand::Serve { bind: Some(bind), .. } = &self {
            overrides = overrides.merge(Serialized::default("server.bind", bind.to_string()));
        }
        let config = Config::load(config_file, overrides)?;
        telemetry::init_logging(&config.log);
        if matches!(self, ServiceCommand::Serve { .. } | ServiceCommand::Worker | ServiceCommand::Token { .. }) {
            config.jwt_secret()?;
        }
        match self {
            ServiceCommand::Serve { no_workers, .. } => serve(config, !no_workers).await,
            ServiceCommand::Worker => app::run_workers(config, app::shutdown_signal()).await,
            ServiceCommand::Migrate => app::open_backends(&config).await.map(drop),
            ServiceCommand::Token { user, admin, cohort, ttl } => {
                println!("{}", mint(&config, &user, admin, cohort, ttl)?);
                Ok(())
            }
            ServiceCommand::Keys { command } => keys(&config, command).await,
            ServiceCommand::Config => {
                println!("{}", toml::to_string_pretty(&config)?);
                Ok(())
            }
        }
    }
}

async fn keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let (db, _) = app::open_backends(config).await?;
    match command {
        KeysCommand::Rotate => println!("{}", KeyRing::new(db).rotate().await?),
        KeysCommand::List => {
            for key in db.playback_keys().await? {
                println!("{}\t{}", key.kid, key.created_at.to_rfc3339());
            }
        }
        KeysCommand::Remove { kid } => {
            anyhow::ensure!(db.remove_playback_key(&kid).await?, "no key {kid} removed (unknown, or the last key)");
        }
    }
    Ok(())
}

async fn serve(config: Config, workers: bool) -> anyhow::Result<()> {
    let embedded = config.database.url.starts_with("sqlite:") && config.storage.backend == StorageBackend::Local;
    let demo_token =
        if embedded { Some(mint(&config, "demo", false, None, Duration::from_secs(86_400))?) } else { None };
    let app = Application::build(config, workers).await?;
    if let Some(token) = demo_token {
        print_quickstart(app.local_addr()?, &token);
    }
    app.run_until_stopped(app::shutdown_signal()).await
}

fn print_quickstart(addr: SocketAddr, token: &str) {
    eprintln!(
        "\nreel is running on http://{addr} (SQLite + local files under ./data)\n\
         A token for user 'demo' (valid 24 h; mint others with `reel token --user NAME`). It is a\n\
         credential: it is shown here once and never logged.\n\n  \
         export TOKEN={token}\n\n\
         Start an upload:\n\n  \
         curl -s -X POST http://{addr}/v1/videos/uploads -H \"Authorization: Bearer $TOKEN\" \\\n    \
         -H 'content-type: application/json' \\\n    \
         -d '{{\"filename\":\"clip.mp4\",\"content_type\":\"video/mp4\",\"size_bytes\":'$(stat -c%s clip.mp4)'}}'\n\n\
         then PUT each part to its `url` (with the same Authorization header) and POST .../complete.\n"
    );
}

fn mint(config: &Config, user: &str, admin: bool, cohort: Option<String>, ttl: Duration) -> anyhow::Result<String> {
    let user = UserId::parse(user)?;
    let exp = expiry(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(), ttl)?;
    let role = if admin { Role::Admin } else { Role::User };
    let claims = Claims { sub: user.to_string(), exp, nbf: None, role, cohort };
    let auth = Authenticator::new(config.jwt_secret()?.expose().as_bytes());
    Ok(auth.issue(&claims)?)
}

/// Latest expiry a token may carry: JWT numeric dates must stay exact in a JSON number (2^53).
const MAX_EXP: u64 = (1 << 53) - 1;

/// `now + ttl` in Unix seconds, refused when it overflows.
fn expiry(now: u64, ttl: Duration) -> anyhow::Result<u64> {
    now.checked_add(ttl.as_secs())
        .filter(|exp| *exp <= MAX_EXP)
        .ok_or_else(|| anyhow::anyhow!("--ttl {} is too long", humantime::format_duration(ttl)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_that_overflows_is_refused() {
        assert_eq!(expiry(100, Duration::from_secs(60)).expect("fits"), 160);
        assert!(expiry(100, Duration::from_secs(u64::MAX)).is_err());
        assert!(expiry(100, Duration::from_secs(MAX_EXP)).is_err());
    }
}
