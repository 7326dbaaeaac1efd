-- Playable in seconds: the start rungs are published while they encode (phase 1), the rest of the
-- ladder follows under a versioned master (phase 2). Claims record when they happened so one
-- creator's burst cannot starve the others. Workers LISTEN on `reel_work`: every new job or
-- upload event wakes them at once (a timed poll stays as the fallback).

ALTER TABLE video_assets ADD COLUMN playable_at TIMESTAMPTZ;
ALTER TABLE video_assets ADD COLUMN preview_manifest_url TEXT;
ALTER TABLE video_assets ADD COLUMN start_ladder TEXT;
ALTER TABLE video_assets ADD COLUMN ladder_completed_at TIMESTAMPTZ;
ALTER TABLE video_assets ADD COLUMN ladder_failed_reason TEXT;

ALTER TABLE video_processing_jobs ADD COLUMN claimed_at TIMESTAMPTZ;
CREATE INDEX video_processing_jobs_video ON video_processing_jobs (video_id, claimed_at);

CREATE FUNCTION reel_notify_work() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('reel_work', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Notifications are delivered at commit and duplicates within one transaction fold into one.
CREATE TRIGGER video_processing_jobs_notify AFTER INSERT OR UPDATE OF status ON video_processing_jobs
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION reel_notify_work();
CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
    FOR EACH ROW WHEN (NEW.event_type = 'video_upload_completed') EXECUTE FUNCTION reel_notify_work();
