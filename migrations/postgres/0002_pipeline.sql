-- Pipeline: processing clock for the hard timeout, creator and engagement inputs of the value score.

ALTER TABLE video_assets ADD COLUMN processing_since TIMESTAMPTZ;
ALTER TABLE video_assets ADD COLUMN value_score DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE video_assets ADD COLUMN early_watch_through DOUBLE PRECISION;
ALTER TABLE video_assets ADD COLUMN early_support_click_rate DOUBLE PRECISION;
UPDATE video_assets SET processing_since = created_at WHERE status = 'processing';
CREATE INDEX video_assets_processing ON video_assets (status, processing_since);

CREATE TABLE creators (
    creator_id      TEXT PRIMARY KEY,
    follower_count  BIGINT NOT NULL DEFAULT 0,
    updated_at      TIMESTAMPTZ NOT NULL
);
