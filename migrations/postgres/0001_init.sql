-- reel schema, PostgreSQL flavour. Timestamps are TIMESTAMPTZ (UTC); ids are UUIDv7 text.

CREATE TABLE upload_sessions (
    id              TEXT PRIMARY KEY,
    creator_id      TEXT NOT NULL,
    video_id        TEXT NOT NULL UNIQUE,
    filename        TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    sha256          TEXT,
    part_size       BIGINT NOT NULL,
    part_count      BIGINT NOT NULL,
    status          TEXT NOT NULL,
    s3_upload_id    TEXT,
    source_key      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ,
    staging_cleared_at TIMESTAMPTZ
);
CREATE INDEX upload_sessions_expiry ON upload_sessions (status, expires_at);

CREATE TABLE upload_parts (
    upload_id       TEXT NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    part_number     BIGINT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    etag            TEXT NOT NULL,
    sha256          TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

CREATE TABLE video_assets (
    video_id            TEXT PRIMARY KEY,
    creator_user_id     TEXT NOT NULL,
    upload_session_id   TEXT NOT NULL UNIQUE REFERENCES upload_sessions (id),
    status              TEXT NOT NULL,
    origin_object_key   TEXT NOT NULL,
    duration_ms         BIGINT,
    width               BIGINT,
    height              BIGINT,
    has_audio           BOOLEAN,
    manifest_url        TEXT,
    thumbnail_url       TEXT,
    published_at        TIMESTAMPTZ,
    failed_reason       TEXT,
    retryable           BOOLEAN,
    generation          BIGINT NOT NULL DEFAULT 1,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX video_assets_creator ON video_assets (creator_user_id, created_at DESC);
CREATE INDEX video_assets_status ON video_assets (status, created_at DESC);

CREATE TABLE video_renditions (
    id              TEXT PRIMARY KEY,
    video_id        TEXT NOT NULL REFERENCES video_assets (video_id) ON DELETE CASCADE,
    generation      BIGINT NOT NULL,
    profile         TEXT NOT NULL,
    width           BIGINT NOT NULL,
    height          BIGINT NOT NULL,
    bitrate_kbps    BIGINT NOT NULL,
    playlist_url    TEXT NOT NULL,
    segment_count   BIGINT NOT NULL,
    codec           TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (video_id, generation, profile)
);

CREATE TABLE video_processing_jobs (
    id              TEXT PRIMARY KEY,
    video_id        TEXT NOT NULL REFERENCES video_assets (video_id) ON DELETE CASCADE,
    generation      BIGINT NOT NULL,
    stage           TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempt         BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    priority        BIGINT NOT NULL DEFAULT 0,
    error_message   TEXT,
    run_after       TIMESTAMPTZ NOT NULL,
    lease_owner     TEXT,
    lease_expires_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (video_id, generation, stage)
);
CREATE INDEX video_processing_jobs_claim ON video_processing_jobs (status, priority DESC, run_after);

CREATE TABLE video_delivery_policy (
    video_id            TEXT PRIMARY KEY REFERENCES video_assets (video_id) ON DELETE CASCADE,
    max_bitrate_kbps    BIGINT,
    prefetch_priority   BIGINT,
    cache_tier_hint     TEXT,
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE outbox_events (
    id              TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    aggregate_id    TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    published_at    TIMESTAMPTZ
);
CREATE INDEX outbox_events_pending ON outbox_events (published_at, created_at);
