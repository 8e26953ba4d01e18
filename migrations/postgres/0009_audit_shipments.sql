-- Audit batches shipped to the audit bucket (engine/src/audit_ship).
-- A batch is a contiguous range of audit ids. Its row is written when the
-- batch is planned (shipped_at NULL) and completed once the object is
-- stored, so a shipper that died in between retries exactly the same range
-- under the same key, and ranges never overlap (first_id is the key and
-- each range starts right after the previous one).
CREATE TABLE audit_shipments (
    first_id   BIGINT PRIMARY KEY,
    last_id    BIGINT      NOT NULL,
    row_count  BIGINT      NOT NULL,
    object_key TEXT        NOT NULL,
    sha256     TEXT        NOT NULL,
    planned_at TIMESTAMPTZ NOT NULL,
    shipped_at TIMESTAMPTZ,
    CHECK (last_id >= first_id)
);

-- Filters of GET /v1/audit.
CREATE INDEX audit_actor_idx ON audit (actor, id);
CREATE INDEX audit_target_idx ON audit (target, id);
CREATE INDEX audit_at_idx ON audit (at);
