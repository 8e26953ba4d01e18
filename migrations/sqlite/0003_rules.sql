-- Category rules, SQLite flavour. Same logical schema as
-- migrations/postgres/0003_rules.sql; keep the two in step. The spec is
-- JSON in TEXT; timestamps are RFC 3339 TEXT as written by sqlx's chrono
-- support.

-- Versioned rule sets: every save writes a new row, so the history of a
-- category's rules stays. Category `*` holds the global default. The spec
-- is the serialised `RuleSpec`.
CREATE TABLE category_rules (
    category   TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    spec       TEXT    NOT NULL,
    updated_by TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (category, version)
);
