-- Playback access: per-video `public | signed` policy and the ES256 keys that sign playback
-- tokens. Keys live in the database so that every serve process signs and verifies alike.

ALTER TABLE video_delivery_policy ADD COLUMN playback TEXT;

CREATE TABLE playback_keys (
    kid          TEXT PRIMARY KEY,
    private_key  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
