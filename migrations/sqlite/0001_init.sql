-- reel schema, SQLite flavour. Timestamps are RFC 3339 text in UTC; ids are UUIDv7 text.

CREATE TABLE upload_sessions (
    id              TEXT PRIMARY KEY,
    creator_id      TEXT NOT NULL,
    video_id        TEXT NOT NULL UNIQUE,
    filename        TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL,
    sha256          TEXT,
    part_size       INTEGER NOT NULL,
    part_count      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    s3_upload_id    TEXT,
    source_key      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    completed_at    TEXT,
    staging_cleared_at TEXT
);
CREATE INDEX upload_sessions_expiry ON upload_sessions (status, expires_at);

CREATE TABLE upload_parts (
    upload_id       TEXT NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    part_number     INTEGER NOT NULL,
    size_bytes      INTEGER NOT NULL,
    etag            TEXT NOT NULL,
    sha256          TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

CREATE TABLE video_assets (
    video_id            TEXT PRIMARY KEY,
    creator_user_id     TEXT NOT NULL,
    upload_session_id   TEXT NOT NULL UNIQUE REFERENCES upload_sessions (id),
    status              TEXT NOT NULL,
    origin_object_key   TEXT NOT NULL,
    duration_ms         INTEGER,
    width               INTEGER,
    height              INTEGER,
    has_audio           INTEGER,
    manifest_url        TEXT,
    thumbnail_url       TEXT,
    published_at        TEXT,
    failed_reason       TEXT,
    retryable           INTEGER,
    generation          INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX video_assets_creator ON video_assets (creator_user_id, created_at DESC);
CREATE INDEX video_assets_status ON video_assets (status, created_at DESC);

CREATE TABLE video_renditions (
    id              TEXT PRIMARY KEY,
    video_id        TEXT NOT NULL REFERENCES video_assets (video_id) ON DELETE CASCADE,
    generation      INTEGER NOT NULL,
    profile         TEXT NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    bitrate_kbps    INTEGER NOT NULL,
    playlist_url    TEXT NOT NULL,
    segment_count   INTEGER NOT NULL,
    codec           TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (video_id, generation, profile)
);

CREATE TABLE video_processing_jobs (
    id              TEXT PRIMARY KEY,
    video_id        TEXT NOT NULL REFERENCES video_assets (video_id) ON DELETE CASCADE,
    generation      INTEGER NOT NULL,
    stage           TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempt         INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    error_message   TEXT,
    run_after       TEXT NOT NULL,
    lease_owner     TEXT,
    lease_expires_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (video_id, generation, stage)
);
CREATE INDEX video_processing_jobs_claim ON video_processing_jobs (status, priority DESC, run_after);

CREATE TABLE video_delivery_policy (
    video_id            TEXT PRIMARY KEY REFERENCES video_assets (video_id) ON DELETE CASCADE,
    max_bitrate_kbps    INTEGER,
    prefetch_priority   INTEGER,
    cache_tier_hint     TEXT,
    updated_at          TEXT NOT NULL
);

CREATE TABLE outbox_events (
    id              TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    aggregate_id    TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    published_at    TEXT
);
CREATE INDEX outbox_events_pending ON outbox_events (published_at, created_at);
