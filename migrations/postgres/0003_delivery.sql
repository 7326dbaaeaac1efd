-- Delivery: global policy defaults settable at runtime, engagement counters behind the value score.

CREATE TABLE delivery_settings (
    id                              BIGINT PRIMARY KEY CHECK (id = 1),
    feed_max_short_side             BIGINT NOT NULL,
    low_conversion_max_short_side   BIGINT NOT NULL,
    prefetch_cap                    BIGINT NOT NULL,
    updated_at                      TIMESTAMPTZ NOT NULL
);

ALTER TABLE video_assets ADD COLUMN engagement_views BIGINT NOT NULL DEFAULT 0;
ALTER TABLE video_assets ADD COLUMN engagement_watched_sum DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE video_assets ADD COLUMN engagement_support_clicks BIGINT NOT NULL DEFAULT 0;
CREATE INDEX video_assets_feed ON video_assets (status, video_id DESC);
