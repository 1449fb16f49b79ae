-- Rule bundles: every revision ever uploaded (so rollback needs nothing
-- but the database), every activation attempt (the history), and the
-- active revision per bundle name (what every replica converges on).

CREATE TABLE rule_bundles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT   NOT NULL,
    revision    TEXT   NOT NULL,
    digest      TEXT   NOT NULL,
    -- The archive, base64 (TEXT keeps one row type for both dialects).
    archive     TEXT   NOT NULL,
    manifest    TEXT   NOT NULL,
    signed_by   TEXT,
    uploaded_at BIGINT NOT NULL,
    uploaded_by TEXT   NOT NULL,
    UNIQUE (name, revision)
);

CREATE TABLE bundle_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT   NOT NULL,
    revision   TEXT   NOT NULL,
    -- activate, rollback, delete, refused
    action     TEXT   NOT NULL,
    error      TEXT,
    actor      TEXT   NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX bundle_events_name ON bundle_events (name, at);

-- One row per bundle name; revision NULL once the bundle is deleted.
CREATE TABLE bundle_state (
    name         TEXT   PRIMARY KEY,
    bundle_id    BIGINT,
    revision     TEXT,
    activated_at BIGINT NOT NULL,
    -- Bumped on every change: replicas compare it to what they run.
    generation   BIGINT NOT NULL
);
