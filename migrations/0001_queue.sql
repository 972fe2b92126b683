-- The work queue of `[server] queue = "postgres"` (design §18): one row per accepted delivery,
-- its delivery id the dedupe key. A worker claims rows with FOR UPDATE SKIP LOCKED and holds
-- them with a lease (claimed_by, lease_until) that it renews while it works; a row whose lease
-- ran out is claimed again by any replica. `body` is the versioned `Work` encoding, emptied
-- once the row is done (the row stays as the dedupe record).
CREATE TABLE IF NOT EXISTS auger_queue (
    seq         BIGSERIAL PRIMARY KEY,
    delivery_id TEXT NOT NULL UNIQUE,
    event       TEXT NOT NULL,
    body        BYTEA NOT NULL,
    accepted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_by  TEXT,
    lease_until TIMESTAMPTZ,
    claims      INTEGER NOT NULL DEFAULT 0,
    done_at     TIMESTAMPTZ
);

-- What a claim scans: the rows not yet done, oldest first.
CREATE INDEX IF NOT EXISTS auger_queue_pending ON auger_queue (seq) WHERE done_at IS NULL;
