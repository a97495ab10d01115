-- Progress on a target: which source snapshot its data reflects. Written in
-- the same transaction as the rows it describes, so "applied" and "recorded
-- as applied" can never disagree, whatever crashes when.

CREATE SCHEMA IF NOT EXISTS pgtandem;

CREATE TABLE IF NOT EXISTS pgtandem.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO pgtandem.meta (key, value) VALUES ('role', 'target'), ('schema_version', '1')
ON CONFLICT (key) DO NOTHING;

CREATE TABLE IF NOT EXISTS pgtandem.progress (
    sync             text PRIMARY KEY,
    -- Every source transaction visible in this snapshot is applied.
    applied_snapshot text NOT NULL,
    -- A batch window larger than one transaction is applied in pieces:
    -- window_end is its upper snapshot, position the last delta applied.
    window_end       text,
    position_table   integer,
    position_txid    bigint,
    position_seq     bigint,
    batches          bigint NOT NULL DEFAULT 0,
    deltas           bigint NOT NULL DEFAULT 0,
    rows_copied      bigint NOT NULL DEFAULT 0,
    applied_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- pgtandem.meta.install_id of the source capture these snapshots refer to.
    source_install   text NOT NULL
);

-- Set while the target may hold rows newer than applied_snapshot (a window
-- applied in pieces reads rows as of each piece; "bootstrap --copy" and
-- "bootstrap --force" start behind the rows they hold): a snapshot that
-- covers them. Until applied_snapshot covers it, a key the source inserted
-- may already be on the target legitimately, so collisions are not checked.
-- Checked first: ALTER TABLE would wait for every open apply transaction.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = 'pgtandem.progress'::regclass
                                                            AND attname = 'rows_newer_until' AND NOT attisdropped) THEN
        ALTER TABLE pgtandem.progress ADD COLUMN rows_newer_until text;
    END IF;
END
$$;

-- "bootstrap --copy": tables already copied, each at its source snapshot,
-- so an interrupted copy resumes table by table; catch-up then starts at the
-- oldest of those snapshots (replaying from there is harmless: apply is
-- state-based).
CREATE TABLE IF NOT EXISTS pgtandem.copy_state (
    sync       text NOT NULL,
    table_name text NOT NULL,
    snapshot   text NOT NULL,
    rows       bigint NOT NULL,
    copied_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (sync, table_name)
);
