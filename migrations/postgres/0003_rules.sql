-- Category rules, PostgreSQL flavour. The SQLite flavour
-- (migrations/sqlite/0003_rules.sql) holds the same logical schema; keep
-- the two in step.

-- Versioned rule sets: every save writes a new row, so the history of a
-- category's rules stays. Category `*` holds the global default. The spec
-- is the serialised `RuleSpec`.
CREATE TABLE category_rules (
    category   TEXT        NOT NULL,
    version    INTEGER     NOT NULL CHECK (version >= 1),
    spec       JSONB       NOT NULL,
    updated_by TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (category, version)
);
