//! Signed playback: short-lived ES256 tokens naming one video. Delivery mints them for the URLs
//! it hands out (status, feed, prefetch hints); the origin checks them. Keys live in the
//! database (every process signs and verifies alike) and are told apart by `kid`: the newest
//! key signs, every stored key verifies, so a rotation never breaks a URL already handed out.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::db::{Db, DbError, PlaybackKeyRow};
use crate::model::VideoId;

/// How long a process trusts its copy of the key set.
const KEYS_TTL: Duration = Duration::from_secs(30);
/// How soon an unknown `kid` may make a process reload the key set.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(2);
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// The claims of a playback token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaybackClaims {
    /// The video id.
    pub sub: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Not valid before (Unix seconds).
    pub nbf: i64,
    /// Highest rendition (short side, e.g. 540) the token opens; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<u32>,
}

/// A token the origin refuses (`403`): missing, malformed, expired, unknown `kid`, bad
/// signature or another video's.
#[derive(Debug, thiserror::Error)]
#[error("invalid playback token")]
pub struct Denied;

/// Why a key could not be added.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The system random source failed.
    #[error("could not generate a playback key")]
    Generate,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A new ES256 key pair with a random `kid`, ready to store.
pub fn generate_key(now: DateTime<Utc>) -> Result<PlaybackKeyRow, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| KeyError::Generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| KeyError::Generate)?;
    let mut kid = [0u8; 8];
    rng.fill(&mut kid).map_err(|_| KeyError::Generate)?;
    Ok(PlaybackKeyRow {
        kid: hex::encode(kid),
        private_key: STANDARD.encode(pkcs8.as_ref()),
        public_key: STANDARD.encode(pair.public_key().as_ref()),
        created_at: now,
    })
}

/// One process's view of the stored keys.
#[derive(Default)]
struct KeySet {
    loaded_at: Option<Instant>,
    signing: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
}

impl KeySet {
    fn from_rows(rows: &[PlaybackKeyRow]) -> Self {
        let mut set = KeySet { loaded_at: Some(Instant::now()), ..KeySet::default() };
        for row in rows {
            let (Ok(private), Ok(public)) = (STANDARD.decode(&row.private_key), STANDARD.decode(&row.public_key))
            else {
                tracing::warn!(kid = %row.kid, "skipping a malformed playback key");
                continue;
            };
            set.verifying.insert(row.kid.clone(), DecodingKey::from_ec_der(&public));
            if set.signing.is_none() {
                set.signing = Some((row.kid.clone(), EncodingKey::from_ec_der(&private)));
            }
        }
        set
    }

    fn fresh(&self, max_age: Duration) -> bool {
        self.loaded_at.is_some_and(|at| at.elapsed() < max_age)
    }
}

/// The playback keys, loaded from the database and refreshed every [`KEYS_TTL`].
#[derive(Clone)]
pub struct KeyRing {
    db: Db,
    keys: Arc<RwLock<Arc<KeySet>>>,
}

/// Mints tokens with the signing key loaded when it was made (no I/O per token).
pub struct Signer {
    keys: Arc<KeySet>,
    ttl: Duration,
}

impl Signer {
    /// A token for `video` valid for the configured lifetime, or `None` when no key exists.
    pub fn token(&self, video: VideoId, cap: Option<u32>) -> Option<String> {
        let (kid, key) = self.keys.signing.as_ref()?;
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = PlaybackClaims { sub: video.to_string(), exp: now.saturating_add(ttl), nbf: now, cap };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &claims, key).ok()
    }
}

impl KeyRing {
    /// A ring over the keys stored in `db` (loaded on first use).
    pub fn new(db: Db) -> Self {
        KeyRing { db, keys: Arc::default() }
    }

    async fn load(&self, max_age: Duration) -> Result<Arc<KeySet>, DbError> {
        let current = self.keys.read().unwrap_or_else(PoisonError::into_inner).clone();
        if current.fresh(max_age) {
            return Ok(current);
        }
        let fresh = Arc::new(KeySet::from_rows(&self.db.playback_keys().await?));
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }

    /// Adds a new signing key (the `reel keys rotate` command). Older keys keep verifying.
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let key = generate_key(Utc::now())?;
        self.db.insert_playback_key(&key).await?;
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::default();
        Ok(key.kid)
    }

    /// Makes sure a signing key exists (at startup), adding the first one if none does.
    pub async fn ensure_key(&self) -> Result<(), KeyError> {
        if self.load(Duration::ZERO).await?.signing.is_none() {
            self.rotate().await?;
        }
        Ok(())
    }

    /// A signer over the current keys, with tokens living `ttl`.
    pub async fn signer(&self, ttl: Duration) -> Result<Signer, DbError> {
        Ok(Signer { keys: self.load(KEYS_TTL).await?, ttl })
    }

    /// Checks a token for `video`: ES256 only, a known `kid`, `sub` = the video, within
    /// `nbf`..`exp`.
    pub async fn verify(&self, token: &str, video: VideoId) -> Result<PlaybackClaims, Denied> {
        let kid = jsonwebtoken::decode_header(token).map_err(|_| Denied)?.kid.ok_or(Denied)?;
        let mut keys = self.load(KEYS_TTL).await.map_err(|_| Denied)?;
        if !keys.verifying.contains_key(&kid) && !keys.fresh(UNKNOWN_KID_RELOAD) {
            keys = self.load(Duration::ZERO).await.map_err(|_| Denied)?;
        }
        let key = keys.verifying.get(&kid).ok_or(Denied)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        validation.sub = Some(video.to_string());
        Ok(jsonwebtoken::decode::<PlaybackClaims>(token, key, &validation).map_err(|_| Denied)?.claims)
    }
}
