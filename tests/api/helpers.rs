//! Test harness: spawns reel in-process on a chosen backend pair, with a fresh database and
//! bucket per test, and typed helpers for the HTTP API.
//!
//! The PostgreSQL and S3 backends come from the environment that `scripts/test.sh` sets up
//! (`REEL_TEST_DATABASE_URL`, `REEL_TEST_S3_*`). When they are missing the test fails: a backend
//! is never skipped silently.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reel::api::auth::{Authenticator, Claims};
use reel::api::state::AppState;
use reel::app::Application;
use reel::config::{Config, S3Config, Secret, StorageBackend};
use reel::db::Db;
use reel::model::Role;
use reel::storage::StorageError;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const JWT_SECRET: &str = "reel-test-jwt-secret-at-least-32-bytes";
pub const MIB: usize = 1 << 20;

/// Which backends a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: SQLite and the local filesystem.
    SqliteFs,
    /// Production: PostgreSQL and an S3-compatible server.
    PostgresS3,
}

/// Runs each named scenario `async fn name(backend: Backend)` once per backend pair.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::SqliteFs).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::PostgresS3).await
                }
            )*
        }
    };
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with scripts/test.sh, which provisions PostgreSQL and S3")
    })
}

/// A scratch PostgreSQL database, dropped with the test.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin_url = required_env("REEL_TEST_DATABASE_URL");
        let name = format!("reel_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
        let mut url = url::Url::parse(&admin_url).expect("valid REEL_TEST_DATABASE_URL");
        url.set_path(&name);
        PgDatabase { admin_url, name, url: url.to_string() }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&sql).execute(&mut conn).await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// S3 settings for a fresh bucket on the test server.
pub async fn s3_bucket() -> S3Config {
    let endpoint = required_env("REEL_TEST_S3_ENDPOINT");
    let config = S3Config {
        endpoint: endpoint.clone(),
        region: "us-east-1".into(),
        bucket: format!("reel-test-{}", uuid::Uuid::now_v7().simple()),
        access_key_id: required_env("REEL_TEST_S3_ACCESS_KEY"),
        secret_access_key: Secret::new(required_env("REEL_TEST_S3_SECRET_KEY")),
        path_style: true,
        direct_uploads: false,
    };
    let bucket = rusty_s3::Bucket::new(
        endpoint.parse().expect("endpoint url"),
        rusty_s3::UrlStyle::Path,
        config.bucket.clone(),
        "us-east-1",
    )
    .expect("bucket");
    let credentials =
        rusty_s3::Credentials::new(config.access_key_id.clone(), config.secret_access_key.expose().to_owned());
    let url = rusty_s3::S3Action::sign(&bucket.create_bucket(&credentials), Duration::from_secs(60));
    let response = reqwest::Client::new().put(url).send().await.expect("S3 server reachable");
    assert!(response.status().is_success(), "create bucket: {}", response.status());
    config
}

/// A running reel and what it was built on.
pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    pub config: Config,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The configuration a test app starts from.
pub async fn test_config(backend: Backend, dir: &std::path::Path) -> (Config, Option<PgDatabase>) {
    let mut config = Config::default();
    config.server.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.auth.jwt_secret = Some(Secret::new(JWT_SECRET));
    config.uploads.part_size_bytes = 5 * MIB as u64;
    // Generous: on a loaded 2-core machine, opening a connection and migrating can take seconds.
    config.database.acquire_timeout = Duration::from_secs(15);
    config.pipeline.workers = 0;
    config.pipeline.work_dir = dir.join("work");
    config.pipeline.ladder.segment_seconds = 1.0;
    config.pipeline.retry_backoff = Duration::ZERO;
    let pg = match backend {
        Backend::SqliteFs => {
            config.database.url = format!("sqlite://{}/reel.db", dir.display());
            config.storage.local_root = dir.join("objects");
            None
        }
        Backend::PostgresS3 => {
            let pg = PgDatabase::create().await;
            config.database.url = pg.url.clone();
            config.storage.backend = StorageBackend::S3;
            config.storage.s3 = Some(s3_bucket().await);
            Some(pg)
        }
    };
    (config, pg)
}

/// Spawns reel (with workers) on `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Sends reel's logs to the test's captured output (shown for failing tests); `RUST_LOG` filters.
fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

/// Spawns reel after letting the test adjust the configuration.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    init_test_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut config, pg) = test_config(backend, dir.path()).await;
    adjust(&mut config);
    let app = Application::build(config.clone(), true).await.expect("app builds");
    let base = format!("http://{}", app.local_addr().expect("bound"));
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped(async move { stop.cancelled().await }).await;
    });
    TestApp { base, state, http: reqwest::Client::new(), config, shutdown, server: Some(server), _dir: dir, _pg: pg }
}

/// A token for `user` signed with the test secret.
pub fn token(user: &str) -> String {
    token_with(user, Role::User, None)
}

/// A token with a role and cohort.
pub fn token_with(user: &str, role: Role, cohort: Option<&str>) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() + 3600;
    let claims = Claims { sub: user.into(), exp, nbf: None, role, cohort: cohort.map(str::to_owned) };
    Authenticator::new(JWT_SECRET.as_bytes()).issue(&claims).expect("token")
}

/// Runs ffmpeg with `args` writing `name` in a temp dir and returns the file's bytes.
pub fn ffmpeg_output(name: &str, args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?} failed");
    std::fs::read(&out).expect("ffmpeg output")
}

/// A portrait H.264/AAC MP4 generated from lavfi test sources.
pub fn portrait_clip(width: u32, height: u32, seconds: u32) -> Vec<u8> {
    let video = format!("testsrc2=size={width}x{height}:rate=30:duration={seconds}");
    let audio = format!("sine=frequency=440:sample_rate=48000:duration={seconds}");
    ffmpeg_output(
        "clip.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            &video,
            "-f",
            "lavfi",
            "-i",
            &audio,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    )
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn noise(len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len + 8);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// Noise that starts like an MP4 (`ftyp isom`): enough for ingest, not for the probe.
pub fn fake_mp4(len: usize) -> Vec<u8> {
    let header = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2";
    let mut data = header.to_vec();
    data.extend(noise(len.saturating_sub(header.len())));
    data.truncate(len);
    data
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn create_upload(&self, token: &str, body: Value) -> Response {
        self.http.post(self.url("/v1/videos/uploads")).bearer_auth(token).json(&body).send().await.expect("request")
    }

    /// Creates a session for `data` and returns its JSON.
    pub async fn start_upload(&self, token: &str, data: &[u8], sha256: Option<String>) -> Value {
        let body =
            json!({"filename": "clip.mp4", "content_type": "video/mp4", "size_bytes": data.len(), "sha256": sha256});
        let response = self.create_upload(token, body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    /// PUTs a part to its target; this server's URLs get the bearer token, bucket URLs do not.
    pub async fn send_part(&self, token: &str, target: &Value, bytes: Vec<u8>, headers: &[(&str, String)]) -> Response {
        let url = target["url"].as_str().expect("url");
        let mut request = self.http.put(url).body(bytes);
        if url.starts_with(&self.base) {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("part request")
    }

    /// The bytes of part `n` (1-based) of `data` under `session`'s plan.
    pub fn part_bytes(session: &Value, data: &[u8], n: u64) -> Vec<u8> {
        let size = session["part_size"].as_u64().expect("part_size") as usize;
        let start = (n as usize - 1) * size;
        data[start..(start + size).min(data.len())].to_vec()
    }

    pub async fn get_upload(&self, token: &str, id: &str) -> Response {
        self.http.get(self.url(&format!("/v1/videos/uploads/{id}"))).bearer_auth(token).send().await.expect("request")
    }

    pub async fn complete(&self, token: &str, id: &str) -> Response {
        self.http
            .post(self.url(&format!("/v1/videos/uploads/{id}/complete")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn abort(&self, token: &str, id: &str) -> Response {
        self.http
            .delete(self.url(&format!("/v1/videos/uploads/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Uploads every part of `data` and completes; returns `(upload_id, video_id)`.
    pub async fn upload(&self, token: &str, data: &[u8]) -> (String, String) {
        let session = self.start_upload(token, data, None).await;
        let id = session["upload_id"].as_str().expect("id").to_owned();
        for target in session["parts"].as_array().expect("parts") {
            let n = target["part_number"].as_u64().expect("n");
            let response = self.send_part(token, target, Self::part_bytes(&session, data, n), &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "part {n}");
        }
        let response = self.complete(token, &id).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.expect("json");
        (id, body["video_id"].as_str().expect("video_id").to_owned())
    }

    /// Reads a whole object from the store.
    pub async fn object(&self, key: &str) -> Vec<u8> {
        let objects = self.state.storage.objects();
        objects.get(&key.into()).await.expect("object exists").bytes().await.expect("bytes").to_vec()
    }

    /// Every key under `prefix`.
    pub async fn keys_under(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let listed: Vec<_> = self.state.storage.objects().list(Some(&prefix.into())).try_collect().await.expect("list");
        listed.into_iter().map(|meta| meta.location.to_string()).collect()
    }

    /// Asserts the bucket holds no multipart parts for the upload: S3 either answers
    /// `NoSuchUpload` or lists none (s3s-fs). Any other answer fails the test.
    pub async fn assert_no_staged_parts(&self, upload_id: &str) {
        let session = self.state.db.get_upload(upload_id.parse().expect("uuid")).await.expect("db").expect("session");
        match self.state.storage.list_staged_parts(&session).await {
            Ok(parts) => assert!(parts.is_empty(), "parts left in the bucket: {parts:?}"),
            Err(StorageError::S3 { status: 404, .. }) => {}
            Err(other) => panic!("unexpected answer listing parts: {other}"),
        }
    }

    /// Runs a statement (or several) directly on the app's database.
    pub async fn exec_sql(&self, sql: &str) {
        match &self.state.db {
            Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
            Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        }
        .expect("sql runs");
    }
}

/// Pipeline helpers.
impl TestApp {
    /// GETs `path` with `token`: status, headers and the JSON body (null when not JSON).
    pub async fn get_json(&self, token: &str, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let response = self.http.get(self.url(path)).bearer_auth(token).send().await.expect("request");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.json().await.unwrap_or(Value::Null))
    }

    /// Relays and runs every runnable job in this process.
    pub async fn drain(&self) -> Vec<reel::pipeline::JobReport> {
        self.state.pipeline.drain().await.expect("pipeline drains")
    }

    /// The video row.
    pub async fn video(&self, id: &str) -> reel::model::Video {
        self.state.db.get_video(id.parse().expect("uuid")).await.expect("db").expect("video exists")
    }

    /// An object as UTF-8 text.
    pub async fn text(&self, key: &str) -> String {
        String::from_utf8(self.object(key).await).expect("utf-8 object")
    }
}

/// Reads an error body's code.
pub async fn error_code(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let body: Value = response.json().await.expect("error body is json");
    (status, body["error"].clone())
}

/// A TCP relay that can cut every connection and refuse new ones, to simulate an outage.
pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<Mutex<bool>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(Mutex::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*up2.lock().expect("lock") {
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links2.lock().expect("lock").push(link);
            }
        });
        TcpProxy { addr, up, links, accept }
    }

    /// Cuts every open connection and refuses new ones.
    pub fn cut(&self) {
        *self.up.lock().expect("lock") = false;
        for link in self.links.lock().expect("lock").drain(..) {
            link.abort();
        }
    }

    /// Relays again.
    pub fn restore(&self) {
        *self.up.lock().expect("lock") = true;
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Starts a `reel worker` process on the same database and bucket as `config`, adjusted by
/// `adjust` (which background loops it runs); its config file goes in `dir`.
pub fn spawn_worker(config: &Config, dir: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> tokio::process::Child {
    let mut file_config = config.clone();
    adjust(&mut file_config);
    let path = dir.join("worker.toml");
    std::fs::write(&path, toml::to_string(&file_config).expect("config serialises")).expect("write config");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"));
    command.arg("--config").arg(&path).arg("worker").env("REEL_AUTH__JWT_SECRET", JWT_SECRET);
    if let (StorageBackend::S3, Some(s3)) = (config.storage.backend, &config.storage.s3) {
        command.env("REEL_STORAGE__S3__SECRET_ACCESS_KEY", s3.secret_access_key.expose());
    }
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("reel worker starts")
}
