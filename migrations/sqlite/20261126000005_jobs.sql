-- Scheduled jobs: every run ever started (the history the API and the
-- console show), and the top-N lists the batch job stores for every user.

CREATE TABLE job_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job          TEXT   NOT NULL,
    -- schedule, manual, chain (a prerequisite of another run), threshold
    trigger      TEXT   NOT NULL,
    -- The schedule slot or threshold baseline a run was made for. Unique per
    -- job, so of several replicas firing for the same slot one row wins and
    -- one replica runs it; NULL (manual runs) never collides.
    dedupe_key   TEXT,
    parent_id    BIGINT,
    -- PENDING, RUNNING, RETRY, SUCCESS, FAILURE
    status       TEXT   NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    requested_by TEXT,
    -- The replica (process) that runs it.
    owner        TEXT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    -- Refreshed while the run is alive; a stale one means its process died.
    heartbeat_at BIGINT NOT NULL,
    -- JSON summary of what the run did.
    result       TEXT,
    error        TEXT,
    UNIQUE (job, dedupe_key)
);
CREATE INDEX job_runs_job ON job_runs (job, id);
CREATE INDEX job_runs_status ON job_runs (status);

CREATE TABLE batch_recommendations (
    user_id       BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- JSON array of recommendations, best first.
    items         TEXT   NOT NULL,
    algorithm     TEXT   NOT NULL,
    model_version BIGINT NOT NULL,
    run_id        BIGINT,
    generated_at  BIGINT NOT NULL
);
