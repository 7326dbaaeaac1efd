-- Playable in seconds: the start rungs are published while they encode (phase 1), the rest of the
-- ladder follows under a versioned master (phase 2). Claims record when they happened so one
-- creator's burst cannot starve the others.

ALTER TABLE video_assets ADD COLUMN playable_at TEXT;
ALTER TABLE video_assets ADD COLUMN preview_manifest_url TEXT;
ALTER TABLE video_assets ADD COLUMN start_ladder TEXT;
ALTER TABLE video_assets ADD COLUMN ladder_completed_at TEXT;
ALTER TABLE video_assets ADD COLUMN ladder_failed_reason TEXT;

ALTER TABLE video_processing_jobs ADD COLUMN claimed_at TEXT;
CREATE INDEX video_processing_jobs_video ON video_processing_jobs (video_id, claimed_at);
