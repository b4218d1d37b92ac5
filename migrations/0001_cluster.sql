-- Myelin cluster coordination: the job queue, dataset metadata and logged
-- interactions shared by every replica. Model versions stay in the object
-- store.

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,            -- UUID v7: sorts by submission time
    model       TEXT NOT NULL,
    status      TEXT NOT NULL,               -- queued, running, succeeded, failed, cancelled, interrupted
    record      JSONB NOT NULL,              -- the whole job record as `GET /jobs/{id}` shows it
    inputs      TEXT[] NOT NULL DEFAULT '{}',-- store keys the job reads (datasets in use)
    owner       TEXT,                        -- replica holding the lease while running
    lease_until TIMESTAMPTZ,
    attempts    INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued';
CREATE INDEX jobs_active_model ON jobs (model) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_running_lease ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_inputs ON jobs USING GIN (inputs) WHERE status IN ('queued', 'running');

CREATE TABLE datasets (
    id         TEXT PRIMARY KEY,
    data_key   TEXT NOT NULL UNIQUE,         -- the data file's key in the object store
    meta       JSONB NOT NULL,               -- as `GET /datasets/{id}` shows it
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE interactions (
    id        BIGSERIAL PRIMARY KEY,
    model     TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    item      TEXT NOT NULL,
    value     REAL,
    ts        BIGINT NOT NULL                -- Unix seconds
);
CREATE INDEX interactions_user ON interactions (model, user_id, id);
CREATE INDEX interactions_model ON interactions (model, id);
