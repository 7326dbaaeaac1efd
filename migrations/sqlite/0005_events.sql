-- Events out: the export markers of the outbox, webhook endpoints and their deliveries.

-- Why the pipeline relay gave up on an event it could not use (dead-lettered, not retried).
ALTER TABLE outbox_events ADD COLUMN dead_reason TEXT;
-- The public envelope, frozen when the event is exported, so every channel and every
-- redelivery carries the same bytes.
ALTER TABLE outbox_events ADD COLUMN envelope TEXT;
-- Fanned out into webhook_deliveries (or dead-lettered when the event cannot be exported).
ALTER TABLE outbox_events ADD COLUMN exported_at TEXT;
-- Acknowledged by NATS JetStream.
ALTER TABLE outbox_events ADD COLUMN streamed_at TEXT;
-- Events written before this migration are history, not news: they are not exported.
UPDATE outbox_events SET exported_at = created_at, streamed_at = created_at;
CREATE INDEX outbox_events_unexported ON outbox_events (exported_at, id);
CREATE INDEX outbox_events_unstreamed ON outbox_events (streamed_at, id);

CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    url                   TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    event_types           TEXT NOT NULL,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TEXT,
    disabled_at           TEXT,
    failing_since         TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    delivered_at     TEXT,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
