-- Abuse limits: per-user quotas count a creator's open and recently completed upload sessions.

CREATE INDEX upload_sessions_creator ON upload_sessions (creator_id, status, completed_at);

-- The beacon counts each viewer's view of a video once: startup, furthest position, support click.
CREATE TABLE beacon_views (
    viewer_id       TEXT NOT NULL,
    video_id        TEXT NOT NULL REFERENCES video_assets (video_id) ON DELETE CASCADE,
    view_id         TEXT NOT NULL,
    started         INTEGER NOT NULL,
    watched         REAL NOT NULL,
    support_clicked INTEGER NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (viewer_id, video_id, view_id)
);
