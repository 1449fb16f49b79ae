-- Trained models, stored so that one replica trains and every other one
-- (and a restarted one) loads what it trained instead of training again.
-- A snapshot is written in one transaction: its row and all its chunks,
-- or nothing.

CREATE TABLE model_snapshots (
    -- Numbered across the fleet: the model version every replica reports.
    version     BIGINT  PRIMARY KEY,
    -- The binary layout's version; a replica loads only the one it reads.
    format      INTEGER NOT NULL,
    -- A digest of the settings the models were trained with; a replica
    -- configured otherwise trains its own instead of loading these.
    settings    TEXT    NOT NULL,
    bytes       BIGINT  NOT NULL,
    -- SHA-256 of the whole snapshot, hex, checked on every load.
    sha256      TEXT    NOT NULL,
    -- The replica that trained it.
    trained_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE model_snapshot_chunks (
    version BIGINT  NOT NULL REFERENCES model_snapshots (version) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    data    BLOB   NOT NULL,
    PRIMARY KEY (version, seq)
);
