-- Core catalogue: users, items, interactions.
-- Timestamps are unix milliseconds (BIGINT) and JSON documents are TEXT, so
-- the same queries and row types serve SQLite and PostgreSQL alike.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL DEFAULT 'user',
    preferences   TEXT    NOT NULL DEFAULT '{}',
    is_active     BIGINT  NOT NULL DEFAULT 1,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE items (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    title            TEXT    NOT NULL,
    description      TEXT    NOT NULL DEFAULT '',
    category         TEXT    NOT NULL DEFAULT '',
    tags             TEXT    NOT NULL DEFAULT '[]',
    features         TEXT    NOT NULL DEFAULT '{}',
    popularity_score DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX items_category ON items (category);
CREATE INDEX items_popularity ON items (popularity_score DESC, id);

CREATE TABLE interactions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    item_id          BIGINT  NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    interaction_type TEXT    NOT NULL,
    rating           DOUBLE PRECISION,
    weight           DOUBLE PRECISION NOT NULL DEFAULT 1,
    created_at       BIGINT  NOT NULL,
    -- Set by bulk imports so that importing the same data set twice is a no-op.
    source_key       TEXT UNIQUE
);
CREATE INDEX interactions_user ON interactions (user_id, created_at);
CREATE INDEX interactions_item ON interactions (item_id, created_at);
CREATE INDEX interactions_time ON interactions (created_at);
