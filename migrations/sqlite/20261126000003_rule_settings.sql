-- Operators' changes to rules (priority, enabled, parameters, failure
-- policy, removal), so they survive a restart.
CREATE TABLE rule_settings (
    name           TEXT   PRIMARY KEY,
    priority       BIGINT NOT NULL,
    enabled        BIGINT NOT NULL,
    config         TEXT   NOT NULL,
    failure_policy TEXT   NOT NULL,
    removed        BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL
);
