//! A body stream that counts and hashes what passes through it and refuses any body whose size
//! or checksums are wrong. The chunk that completes the expected length is held back until the
//! client's stream has ended and the digests match, so a sink that stops reading at
//! `Content-Length` (an S3 `UploadPart`) never receives a whole body that is then refused.
//! Storage backends commit only bodies that end cleanly, so a refused part is never stored.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use md5::Md5;
use sha2::{Digest, Sha256};

/// What the body must match.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Exact byte length.
    pub len: u64,
    /// MD5 digest from `Content-MD5`.
    pub md5: Option<[u8; 16]>,
    /// SHA-256 digest from `x-reel-checksum-sha256`.
    pub sha256: Option<[u8; 32]>,
}

/// How a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong length (`received` counts up to the first byte too many).
    Size { expected: u64, received: u64 },
    /// A declared digest did not match.
    Checksum { algorithm: &'static str },
    /// The client's stream failed.
    Transport(String),
}

/// The outcome, readable once the stream has ended.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Every byte arrived and matched; the part's SHA-256 in hex.
    Accepted { sha256: String },
    /// Refused.
    Refused(Refusal),
}

/// Shared slot the stream writes its verdict into.
pub type VerdictSlot = Arc<Mutex<Option<Verdict>>>;

/// Wraps an inner byte stream; see the module docs.
pub struct Verifying<S> {
    inner: S,
    expected: Expected,
    received: u64,
    sha256: Sha256,
    md5: Md5,
    verdict: VerdictSlot,
    held: Option<Bytes>,
    done: bool,
}

impl<S> Verifying<S> {
    /// Wraps `inner`; the verdict appears in the returned slot when the stream ends.
    pub fn new(inner: S, expected: Expected) -> (Self, VerdictSlot) {
        let verdict = VerdictSlot::default();
        let stream = Verifying {
            inner,
            expected,
            received: 0,
            sha256: Sha256::new(),
            md5: Md5::new(),
            verdict: verdict.clone(),
            held: None,
            done: false,
        };
        (stream, verdict)
    }

    /// Records the verdict; returns the error item to yield when it is a refusal.
    fn finish(&mut self, verdict: Verdict) -> Option<std::io::Result<Bytes>> {
        self.done = true;
        let refused = matches!(verdict, Verdict::Refused(_));
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
        refused.then(|| Err(std::io::Error::other("part refused by verification")))
    }

    fn judge_end(&mut self) -> Verdict {
        if self.received != self.expected.len {
            return Verdict::Refused(Refusal::Size { expected: self.expected.len, received: self.received });
        }
        let sha256: [u8; 32] = self.sha256.finalize_reset().into();
        let md5: [u8; 16] = self.md5.finalize_reset().into();
        if self.expected.md5.is_some_and(|want| want != md5) {
            return Verdict::Refused(Refusal::Checksum { algorithm: "md5" });
        }
        if self.expected.sha256.is_some_and(|want| want != sha256) {
            return Verdict::Refused(Refusal::Checksum { algorithm: "sha256" });
        }
        Verdict::Accepted { sha256: hex::encode(sha256) }
    }
}

impl<S, E> Stream for Verifying<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(err))) => {
                    return Poll::Ready(this.finish(Verdict::Refused(Refusal::Transport(err.to_string()))));
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    this.received += chunk.len() as u64;
                    if this.received > this.expected.len {
                        let refusal = Refusal::Size { expected: this.expected.len, received: this.received };
                        return Poll::Ready(this.finish(Verdict::Refused(refusal)));
                    }
                    this.sha256.update(&chunk);
                    this.md5.update(&chunk);
                    if this.received < this.expected.len {
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    this.held = Some(chunk);
                }
                Poll::Ready(None) => {
                    let verdict = this.judge_end();
                    return Poll::Ready(match this.finish(verdict) {
                        Some(refused) => Some(refused),
                        None => this.held.take().map(Ok),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, stream};

    use super::*;

    async fn run(chunks: Vec<&'static [u8]>, expected: Expected) -> (bool, Option<Verdict>) {
        let inner = stream::iter(chunks.into_iter().map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))));
        let (mut verifying, slot) = Verifying::new(inner, expected);
        let mut failed = false;
        while let Some(item) = verifying.next().await {
            failed |= item.is_err();
        }
        let verdict = slot.lock().ok().and_then(|v| v.clone());
        (failed, verdict)
    }

    #[tokio::test]
    async fn accepts_an_exact_body_and_reports_its_sha256() {
        let sha: [u8; 32] = Sha256::digest(b"hello world").into();
        let (failed, verdict) =
            run(vec![b"hello ", b"world"], Expected { len: 11, sha256: Some(sha), md5: None }).await;
        assert!(!failed);
        assert!(matches!(verdict, Some(Verdict::Accepted { sha256 }) if sha256 == hex::encode(sha)));
    }

    #[tokio::test]
    async fn refuses_short_and_long_bodies_before_the_end() {
        let (failed, verdict) = run(vec![b"abc"], Expected { len: 4, ..Default::default() }).await;
        assert!(failed);
        assert!(matches!(verdict, Some(Verdict::Refused(Refusal::Size { expected: 4, received: 3 }))));
        let (failed, verdict) = run(vec![b"abc", b"de"], Expected { len: 4, ..Default::default() }).await;
        assert!(failed);
        assert!(matches!(verdict, Some(Verdict::Refused(Refusal::Size { expected: 4, received: 5 }))));
    }

    #[tokio::test]
    async fn holds_the_final_chunk_until_the_body_is_judged() {
        let inner = stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))]);
        let (mut verifying, _slot) = Verifying::new(inner, Expected { len: 4, md5: Some([0; 16]), sha256: None });
        assert_eq!(verifying.next().await.and_then(Result::ok), Some(Bytes::from_static(b"ab")));
        assert!(matches!(verifying.next().await, Some(Err(_))), "a refused body never yields its last bytes");
        assert!(verifying.next().await.is_none());
    }

    #[tokio::test]
    async fn refuses_a_wrong_md5() {
        let (failed, verdict) = run(vec![b"abc"], Expected { len: 3, md5: Some([0; 16]), sha256: None }).await;
        assert!(failed);
        assert!(matches!(verdict, Some(Verdict::Refused(Refusal::Checksum { algorithm: "md5" }))));
    }
}
