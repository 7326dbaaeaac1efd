//! Supervised ffmpeg/ffprobe runs.
//!
//! Every child gets a null stdin, its own process group (so a terminal's signals do not reach it
//! behind the service's back), `kill_on_drop`, and a wall-clock deadline after which it is killed
//! and the error names the command. It runs sandboxed: a cleared environment (only [`KEPT_ENV`],
//! so reel's credentials never reach a decoder) and CPU-time and address-space limits
//! ([`ChildLimits`]), set with `prlimit(2)` right after the spawn (reel forbids `unsafe`, so no
//! `pre_exec`; the child is then still loading its shared libraries, before it reads any input). stdout is captured up to a limit; stderr is drained
//! continuously and only its last few KiB are kept, for error messages. ffmpeg and ffprobe start
//! no children of their own, so killing the child's pid empties its group.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::ChildLimits;
use super::error::MediaError;

/// The only variables a child inherits (when the parent has them).
pub(crate) const KEPT_ENV: [&str; 2] = ["PATH", "HOME"];

/// How much of stderr a failure carries.
pub(crate) const STDERR_TAIL_BYTES: usize = 4096;

/// A command line waiting to be started.
pub(crate) struct Invocation {
    program: PathBuf,
    args: Vec<OsString>,
    label: String,
    stdout_limit: Option<usize>,
    stderr_limit: usize,
    limits: ChildLimits,
}

/// A started child and the tasks draining its pipes.
pub(crate) struct Running {
    child: Child,
    label: String,
    stdout: Option<JoinHandle<io::Result<Head>>>,
    stderr: JoinHandle<io::Result<Vec<u8>>>,
}

/// The first bytes of a pipe, and whether more followed.
#[derive(Debug, Default)]
struct Head {
    bytes: Vec<u8>,
    truncated: bool,
}

/// A child that exited before its deadline.
#[derive(Debug)]
pub(crate) struct Completed {
    pub(crate) label: String,
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stdout_truncated: bool,
    pub(crate) stderr_tail: String,
}

impl Invocation {
    /// `label` names the run in errors, e.g. "ffprobe (probe)"; `limits` bound the child.
    pub(crate) fn new(program: &Path, label: &str, limits: ChildLimits) -> Self {
        Self {
            program: program.to_path_buf(),
            args: Vec::new(),
            label: format!("{} ({label})", program.display()),
            stdout_limit: None,
            stderr_limit: STDERR_TAIL_BYTES,
            limits,
        }
    }

    pub(crate) fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Keep at most `limit` bytes of stdout (the rest is drained and dropped).
    pub(crate) fn capture_stdout(mut self, limit: usize) -> Self {
        self.stdout_limit = Some(limit);
        self
    }

    /// Keep the last `bytes` of stderr instead of the default tail size.
    pub(crate) fn stderr_tail(mut self, bytes: usize) -> Self {
        self.stderr_limit = bytes;
        self
    }

    pub(crate) fn spawn(self) -> Result<Running, MediaError> {
        tracing::debug!(command = %self.label, args = ?self.args, "spawning");
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(if self.stdout_limit.is_some() { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::piped())
            .env_clear()
            .envs(KEPT_ENV.iter().filter_map(|name| Some((name, std::env::var_os(name)?))))
            .env("LC_ALL", "C")
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| spawn_error(&self.program, source))?;
        if let Err(source) = limit(&child, self.limits) {
            let _ = child.start_kill();
            return Err(MediaError::Io { context: format!("limiting the resources of {}", self.label), source });
        }
        let stdout = match (child.stdout.take(), self.stdout_limit) {
            (Some(pipe), Some(limit)) => Some(tokio::spawn(read_head(pipe, limit))),
            _ => None,
        };
        let stderr = match child.stderr.take() {
            Some(pipe) => tokio::spawn(read_tail(pipe, self.stderr_limit)),
            None => tokio::spawn(async { Ok(Vec::new()) }),
        };
        Ok(Running { child, label: self.label, stdout, stderr })
    }

    /// Spawn, wait at most `timeout`, and collect the output.
    pub(crate) async fn run(self, timeout: Duration) -> Result<Completed, MediaError> {
        self.spawn()?.wait_until(Instant::now() + timeout, timeout).await
    }
}

impl Running {
    /// Wait until the child exits or `deadline` passes (then kill it; `budget` is reported).
    pub(crate) async fn wait_until(mut self, deadline: Instant, budget: Duration) -> Result<Completed, MediaError> {
        let status = match tokio::time::timeout_at(deadline, self.child.wait()).await {
            Ok(status) => status.map_err(MediaError::io(format!("waiting for {}", self.label)))?,
            Err(_) => return Err(self.kill(budget).await),
        };
        let stdout = match self.stdout.take() {
            Some(task) => join_pipe(task, &self.label).await?,
            None => Head::default(),
        };
        let stderr = join_pipe(self.stderr, &self.label).await?;
        Ok(Completed {
            label: self.label,
            status,
            stdout: stdout.bytes,
            stdout_truncated: stdout.truncated,
            stderr_tail: tail_text(&stderr),
        })
    }

    async fn kill(mut self, budget: Duration) -> MediaError {
        tracing::warn!(command = %self.label, ?budget, "killing child after timeout");
        if let Err(error) = self.child.start_kill() {
            tracing::warn!(command = %self.label, %error, "kill failed");
        }
        if let Err(error) = self.child.wait().await {
            tracing::warn!(command = %self.label, %error, "reaping killed child failed");
        }
        MediaError::TimedOut { command: self.label, after: budget }
    }
}

impl Completed {
    /// Turn a non-zero exit into `MediaError::Failed`.
    pub(crate) fn success(self) -> Result<Self, MediaError> {
        if self.status.success() {
            return Ok(self);
        }
        Err(MediaError::Failed { command: self.label, status: self.status.to_string(), stderr_tail: self.stderr_tail })
    }
}

/// Applies `limits` to a just-started child (soft and hard alike, so it cannot raise them).
fn limit(child: &Child, limits: ChildLimits) -> io::Result<()> {
    use rustix::process::{Pid, Resource, Rlimit, prlimit};
    let pid = child
        .id()
        .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?))
        .ok_or_else(|| io::Error::other("child has no pid"))?;
    for (resource, value) in [(Resource::Cpu, limits.cpu_seconds), (Resource::As, limits.address_space_bytes)] {
        if value > 0 {
            prlimit(Some(pid), resource, Rlimit { current: Some(value), maximum: Some(value) })?;
        }
    }
    Ok(())
}

fn spawn_error(program: &Path, source: io::Error) -> MediaError {
    let name = program.file_name().map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into_owned());
    let message = match source.kind() {
        io::ErrorKind::NotFound => {
            format!("{name} not found at {}: install it or point Tools at the right binary", program.display())
        }
        io::ErrorKind::PermissionDenied => {
            format!("{name} at {} is not executable by this user: fix its permissions", program.display())
        }
        _ => format!("could not start {name} at {}: {source}", program.display()),
    };
    MediaError::Spawn { program: program.to_path_buf(), message, source }
}

async fn join_pipe<T>(task: JoinHandle<io::Result<T>>, label: &str) -> Result<T, MediaError> {
    let context = format!("reading the output of {label}");
    match task.await {
        Ok(result) => result.map_err(MediaError::io(context)),
        Err(join) => Err(MediaError::Io { context, source: io::Error::other(join.to_string()) }),
    }
}

/// Read everything, keeping the first `limit` bytes.
async fn read_head(mut pipe: impl AsyncRead + Unpin, limit: usize) -> io::Result<Head> {
    let mut head = Head::default();
    let mut chunk = [0u8; 8192];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(head);
        }
        let room = limit.saturating_sub(head.bytes.len());
        head.bytes.extend_from_slice(&chunk[..n.min(room)]);
        head.truncated |= n > room;
    }
}

/// Read everything, keeping the last `limit` bytes.
async fn read_tail(mut pipe: impl AsyncRead + Unpin, limit: usize) -> io::Result<Vec<u8>> {
    let mut kept = VecDeque::with_capacity(limit);
    let mut chunk = [0u8; 8192];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(kept.into());
        }
        kept.extend(&chunk[..n]);
        let excess = kept.len().saturating_sub(limit);
        kept.drain(..excess);
    }
}

fn tail_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_binary_gives_actionable_error() {
        let err = Invocation::new(Path::new("/nonexistent/ffmpeg"), "test", ChildLimits::default())
            .run(Duration::from_secs(5))
            .await
            .err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("ffmpeg not found at /nonexistent/ffmpeg"), "{message}");
    }

    #[tokio::test]
    async fn timeout_kills_and_names_the_command() {
        let started = std::time::Instant::now();
        let err = Invocation::new(Path::new("sleep"), "nap", ChildLimits::default())
            .arg("30")
            .run(Duration::from_millis(200))
            .await
            .err();
        assert!(started.elapsed() < Duration::from_secs(5));
        match err {
            Some(MediaError::TimedOut { command, .. }) => assert_eq!(command, "sleep (nap)"),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn failure_carries_a_bounded_stderr_tail() {
        let script = "i=0; while [ $i -lt 2000 ]; do echo line-$i >&2; i=$((i+1)); done; exit 3";
        let err = Invocation::new(Path::new("sh"), "noisy", ChildLimits::default())
            .args(["-c", script])
            .run(Duration::from_secs(10))
            .await
            .and_then(Completed::success)
            .err();
        match err {
            Some(MediaError::Failed { stderr_tail, status, .. }) => {
                assert!(stderr_tail.len() <= STDERR_TAIL_BYTES);
                assert!(stderr_tail.ends_with("line-1999"));
                assert!(status.contains('3'));
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn stdout_is_bounded() {
        let done = Invocation::new(Path::new("sh"), "chatty", ChildLimits::default())
            .args(["-c", "yes | head -c 100000"])
            .capture_stdout(1000)
            .run(Duration::from_secs(10))
            .await;
        match done {
            Ok(done) => {
                assert_eq!(done.stdout.len(), 1000);
                assert!(done.stdout_truncated);
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn a_child_sees_none_of_the_parents_secrets() {
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some(), "cargo sets this in the test's environment");
        let done = Invocation::new(Path::new("env"), "env", ChildLimits::default())
            .capture_stdout(64 << 10)
            .run(Duration::from_secs(10))
            .await
            .and_then(Completed::success)
            .map(|done| String::from_utf8_lossy(&done.stdout).into_owned());
        let env = match done {
            Ok(env) => env,
            Err(e) => panic!("{e}"),
        };
        let names: Vec<&str> = env.lines().filter_map(|line| line.split_once('=').map(|(name, _)| name)).collect();
        assert!(!names.contains(&"CARGO_MANIFEST_DIR"), "{env}");
        assert!(names.iter().all(|name| KEPT_ENV.contains(name) || *name == "LC_ALL"), "{env}");
    }

    #[tokio::test]
    async fn a_child_runs_under_the_cpu_and_memory_limits() {
        let limits = ChildLimits { cpu_seconds: 7, address_space_bytes: 1 << 30 };
        let done = Invocation::new(Path::new("sh"), "limits", limits)
            .args(["-c", "sleep 0.2; ulimit -t; ulimit -v"])
            .capture_stdout(1024)
            .run(Duration::from_secs(10))
            .await
            .and_then(Completed::success)
            .map(|done| String::from_utf8_lossy(&done.stdout).into_owned());
        match done {
            Ok(out) => assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["7", "1048576"], "{out}"),
            Err(e) => panic!("{e}"),
        }
    }
}
