-- Leases per claim: every claim of a job draws a fresh token, and every heartbeat, stage write
-- and finish names it, so a worker whose lease lapsed (even one in the same process as the
-- worker that took the job over) can no longer write anything.

ALTER TABLE video_processing_jobs ADD COLUMN lease_token TEXT;

-- Completion vs sweeper: a completion holds its session until `completing_until`; the sweeper
-- does not expire, and abort does not close, a session being completed.
ALTER TABLE upload_sessions ADD COLUMN completing_until TIMESTAMPTZ;

-- Retention: a failed video's raw source is deleted once it is past reprocessing, and the
-- packaged trees of generations below `pruned_below` have been deleted after a reprocess.
ALTER TABLE video_assets ADD COLUMN source_deleted_at TIMESTAMPTZ;
ALTER TABLE video_assets ADD COLUMN pruned_below BIGINT NOT NULL DEFAULT 1;
