-- Delivery: global policy defaults settable at runtime, engagement counters behind the value score.

CREATE TABLE delivery_settings (
    id                              INTEGER PRIMARY KEY CHECK (id = 1),
    feed_max_short_side             INTEGER NOT NULL,
    low_conversion_max_short_side   INTEGER NOT NULL,
    prefetch_cap                    INTEGER NOT NULL,
    updated_at                      TEXT NOT NULL
);

ALTER TABLE video_assets ADD COLUMN engagement_views INTEGER NOT NULL DEFAULT 0;
ALTER TABLE video_assets ADD COLUMN engagement_watched_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE video_assets ADD COLUMN engagement_support_clicks INTEGER NOT NULL DEFAULT 0;
CREATE INDEX video_assets_feed ON video_assets (status, video_id DESC);
