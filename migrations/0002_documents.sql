-- Small shared documents of `[server] queue = "postgres"` (design §18): what one process kept
-- in a file of its data dir and replicas must share, such as the desired releases and the
-- final statuses still owed. One row per document, rewritten whole; `version` grows by one on
-- every write, and a write names the version it read, so a replica that lost its turn cannot
-- overwrite a newer state.
CREATE TABLE IF NOT EXISTS auger_documents (
    name       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    body       JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by TEXT NOT NULL
);
