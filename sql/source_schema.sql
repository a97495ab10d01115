-- Capture on the source: schema pgtandem, delta tables, trigger functions and
-- the per-target progress copy. Runs inside the install transaction; every
-- statement is idempotent, so install can run again after the config grows.

CREATE SCHEMA IF NOT EXISTS pgtandem;
-- Triggers run as the application's role, which must reach the delta tables.
GRANT USAGE ON SCHEMA pgtandem TO PUBLIC;

CREATE TABLE IF NOT EXISTS pgtandem.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO pgtandem.meta (key, value) VALUES
    ('role', 'source'),
    ('schema_version', '1'),
    ('installed_at', pg_catalog.now()::text),
    ('install_snapshot', pg_catalog.pg_current_snapshot()::text),
    -- Targets remember which install their progress counts from: after an
    -- uninstall, changes went uncaptured and old progress means nothing.
    ('install_id', pg_catalog.gen_random_uuid()::text)
ON CONFLICT (key) DO NOTHING;

-- Orders deltas inside one transaction, so a batch can stop in the middle of a
-- huge transaction and resume there. Gaps are harmless; the cache keeps
-- nextval() off the shared sequence page for most captured rows.
CREATE SEQUENCE IF NOT EXISTS pgtandem.delta_seq AS bigint CACHE 128;
GRANT USAGE ON SEQUENCE pgtandem.delta_seq TO PUBLIC;

CREATE TABLE IF NOT EXISTS pgtandem.captured_table (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relid        oid NOT NULL UNIQUE,
    schema_name  text NOT NULL,
    table_name   text NOT NULL,
    key_columns  text[] NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Deltas of transactions below this were purged: a target whose applied
    -- snapshot is older can no longer be caught up from deltas.
    purged_below xid8
);

-- Which syncs replicate which captured table: deltas are purged only once
-- every target of every sync that reads them has applied them.
CREATE TABLE IF NOT EXISTS pgtandem.sync_table (
    sync     text NOT NULL,
    table_id integer NOT NULL REFERENCES pgtandem.captured_table ON DELETE CASCADE,
    PRIMARY KEY (sync, table_id)
);

-- A copy of each target's progress (the truth lives on the target, written in
-- the same transaction as the data); used for purging and for status.
CREATE TABLE IF NOT EXISTS pgtandem.target_progress (
    sync             text NOT NULL,
    target           text NOT NULL,
    applied_snapshot pg_snapshot NOT NULL,
    applied_at       timestamptz,
    batches          bigint NOT NULL DEFAULT 0,
    deltas           bigint NOT NULL DEFAULT 0,
    rows_copied      bigint NOT NULL DEFAULT 0,
    last_error       text,
    last_error_at    timestamptz,
    -- The SQLSTATE behind last_error, and the table being applied when it
    -- happened, when there were such.
    last_error_sqlstate text,
    last_error_table    text,
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (sync, target)
);

-- Each target's applied-delta counter, sampled with every progress copy into
-- one of 120 one-second slots: status reads the apply rate over the last
-- minute from it, whether the daemon runs or not, and the ring never grows.
CREATE TABLE IF NOT EXISTS pgtandem.progress_sample (
    sync   text NOT NULL,
    target text NOT NULL,
    slot   integer NOT NULL,
    at     timestamptz NOT NULL,
    deltas bigint NOT NULL,
    PRIMARY KEY (sync, target, slot)
);

-- Present while "pgtandem cutover --freeze" keeps application writes off
-- this database; "cutover --unfreeze" puts back the setting it replaced.
CREATE TABLE IF NOT EXISTS pgtandem.freeze (
    database         text PRIMARY KEY,
    -- default_transaction_read_only as set on the database before, NULL if unset.
    previous_setting text,
    frozen_by        text NOT NULL,
    -- From then on every new session of the database started read-only.
    frozen_at        timestamptz NOT NULL,
    -- The source's position once the last write transaction had ended.
    freeze_snapshot  pg_snapshot,
    freeze_lsn       pg_lsn
);

-- Snapshots exported by "pgtandem snapshot" for the DBA's own pg_dump: a
-- target restored from such a dump starts exactly there.
CREATE TABLE IF NOT EXISTS pgtandem.boundary (
    id       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    snapshot pg_snapshot NOT NULL,
    exported text NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Capture installed by a build before lag and error details were recorded:
-- "pgtandem install" brings it up to date. Checked first, so that a
-- reinstall takes no lock on these tables when there is nothing to add.
DO $upgrade$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = 'pgtandem.target_progress'::regclass
                      AND attname = 'last_error_table' AND NOT attisdropped) THEN
        ALTER TABLE pgtandem.target_progress ADD COLUMN last_error_sqlstate text, ADD COLUMN last_error_table text;
    END IF;
END
$upgrade$;

-- TRUNCATE leaves no rows to name: it is logged here, naming the relation
-- truncated (a partition, when one partition is truncated). The applier
-- empties that relation on the target, so a forged entry would destroy data:
-- only capture_truncate(), running as the installing role, writes here.
CREATE TABLE IF NOT EXISTS pgtandem.truncate_log (
    txid        xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    table_id    integer NOT NULL,
    relid       oid NOT NULL,
    captured_at timestamptz DEFAULT pg_catalog.statement_timestamp()
);
CREATE INDEX IF NOT EXISTS truncate_log_table_txid ON pgtandem.truncate_log (table_id, txid);
-- Older installs lack the capture time (see the upgrade above); NULL for truncates logged before.
DO $upgrade$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = 'pgtandem.truncate_log'::regclass
                      AND attname = 'captured_at' AND NOT attisdropped) THEN
        ALTER TABLE pgtandem.truncate_log ADD COLUMN captured_at timestamptz;
        ALTER TABLE pgtandem.truncate_log ALTER COLUMN captured_at SET DEFAULT pg_catalog.statement_timestamp();
    END IF;
END
$upgrade$;

CREATE OR REPLACE FUNCTION pgtandem.capture_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO pgtandem.truncate_log (table_id, relid) VALUES (TG_ARGV[0]::integer, TG_RELID);
    PERFORM pg_catalog.pg_notify('pgtandem', '');
    RETURN NULL;
END
$fn$;
-- Nobody else may attach it to a table of theirs and log truncates at will.
REVOKE EXECUTE ON FUNCTION pgtandem.capture_truncate() FROM PUBLIC;

-- Puts the TRUNCATE trigger on `rel` (a table or one of its partitions)
-- unless it has it: TRUNCATE of one partition does not fire its parent's.
CREATE OR REPLACE FUNCTION pgtandem.add_truncate_trigger(rel regclass, table_id integer) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = rel AND tgname = 'pgtandem_truncate') THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER pgtandem_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT '
            'EXECUTE FUNCTION pgtandem.capture_truncate(%L)', rel, table_id);
    END IF;
END
$fn$;

-- Starts capture for one table with a primary key; returns its id. Idempotent.
-- With c_capture the row trigger runs pgtandem.capture_row(), the C trigger
-- the installer has created; otherwise a PL/pgSQL function of the table's
-- own. Either writes the same deltas; a reinstall switches between them.
DROP FUNCTION IF EXISTS pgtandem.capture_table(regclass);
CREATE OR REPLACE FUNCTION pgtandem.capture_table(rel regclass, c_capture boolean) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    v_trigger_function text;
    v_id integer;
    v_keys text[];
    v_types text[];
    v_old_keys text[];
    v_delta text;
    v_function text;
    v_columns text;
    v_list text;
    v_new text;
    v_old text;
    v_part regclass;
    v_key integer;
BEGIN
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY k.ord),
           pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY k.ord)
      INTO v_keys, v_types
      FROM pg_catalog.pg_index i
     CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = rel AND i.indisprimary;
    IF v_keys IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', rel
            USING HINT = 'add a primary key, or list the table under "exclude"';
    END IF;

    SELECT id, key_columns INTO v_id, v_old_keys FROM pgtandem.captured_table WHERE relid = rel;
    IF v_id IS NULL THEN
        INSERT INTO pgtandem.captured_table (relid, schema_name, table_name, key_columns)
        SELECT c.oid, n.nspname, c.relname, v_keys
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = rel
        RETURNING id INTO v_id;
    ELSIF v_old_keys IS DISTINCT FROM v_keys THEN
        RAISE EXCEPTION 'the primary key of table % changed since capture was installed (was %, now %)', rel, v_old_keys, v_keys
            USING HINT = 'run "pgtandem uninstall" and install again, then bootstrap the targets';
    END IF;

    v_delta := 'd_' || v_id;
    v_function := 'capture_' || v_id;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I %s NOT NULL', k, t), ', ' ORDER BY o),
           pg_catalog.string_agg(pg_catalog.format('%I', k), ', ' ORDER BY o),
           pg_catalog.string_agg(pg_catalog.format('NEW.%I', k), ', ' ORDER BY o),
           pg_catalog.string_agg(pg_catalog.format('OLD.%I', k), ', ' ORDER BY o)
      INTO v_columns, v_list, v_new, v_old
      FROM ROWS FROM (pg_catalog.unnest(v_keys), pg_catalog.unnest(v_types)) WITH ORDINALITY AS u(k, t, o);

    -- Key columns only: the daemon reads each row's current state from the
    -- table itself, so a delta stays small whatever the row holds.
    -- captured_at (when the writing statement started) lets status tell the
    -- age of the oldest change a target still lacks: its lag in seconds.
    EXECUTE pg_catalog.format(
        'CREATE TABLE IF NOT EXISTS pgtandem.%I ('
        'txid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(), '
        'seq bigint NOT NULL DEFAULT pg_catalog.nextval(''pgtandem.delta_seq''::regclass), '
        'captured_at timestamptz DEFAULT pg_catalog.statement_timestamp(), '
        'inserted boolean NOT NULL DEFAULT false, '
        '%s) '
        'WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000)',
        v_delta, v_columns);
    -- A delta table from before capture times were recorded gets the column;
    -- its older deltas keep NULL, and lag is unknown until they are applied.
    -- The table being captured is locked already, so its writers wait anyway.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = pg_catalog.format('pgtandem.%I', v_delta)::regclass
                      AND attname = 'captured_at' AND NOT attisdropped) THEN
        EXECUTE pg_catalog.format('ALTER TABLE pgtandem.%I ADD COLUMN captured_at timestamptz', v_delta);
        EXECUTE pg_catalog.format('ALTER TABLE pgtandem.%I ALTER COLUMN captured_at SET DEFAULT '
                                  'pg_catalog.statement_timestamp()', v_delta);
    END IF;
    -- Older delta tables get the flag; a constant default makes that instant.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = pg_catalog.format('pgtandem.%I', v_delta)::regclass
                      AND attname = 'inserted' AND NOT attisdropped) THEN
        EXECUTE pg_catalog.format('ALTER TABLE pgtandem.%I ADD COLUMN inserted boolean NOT NULL DEFAULT false', v_delta);
    END IF;
    -- A key column whose type changed since install (integer to bigint, say)
    -- changes in the delta table too, or a key only the new type holds could
    -- not be captured: the application's write would fail.
    FOR v_key IN 1 .. pg_catalog.array_length(v_keys, 1) LOOP
        IF (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = pg_catalog.format('pgtandem.%I', v_delta)::regclass
               AND a.attname = v_keys[v_key] AND NOT a.attisdropped) IS DISTINCT FROM v_types[v_key] THEN
            EXECUTE pg_catalog.format('ALTER TABLE pgtandem.%I ALTER COLUMN %I TYPE %s USING %I::%s',
                                      v_delta, v_keys[v_key], v_types[v_key], v_keys[v_key], v_types[v_key]);
        END IF;
    END LOOP;
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON pgtandem.%I (txid, seq)', v_delta || '_txid', v_delta);
    EXECUTE pg_catalog.format('GRANT INSERT ON pgtandem.%I TO PUBLIC', v_delta);

    -- An AFTER trigger sees the row as finally written, after any BEFORE
    -- trigger of the application changed it. A key change records both keys.
    -- "inserted" marks a key that did not exist before the change (an INSERT,
    -- or the new key of an UPDATE): the target must not hold it either, so a
    -- row written there directly is found instead of overwritten.
    -- The daemon is woken once per transaction: NOTIFY takes a cluster-wide
    -- lock at commit, and a transaction-local setting remembers it was sent
    -- (a rolled-back savepoint forgets both). A busy source can turn it off
    -- with pgtandem.notify = off and rely on daemon.poll_interval_ms. While
    -- no daemon listens (none holds advisory lock 1885828196/2 shared, as a
    -- listening daemon does), nobody would hear it, and none is sent.
    IF NOT c_capture THEN
        EXECUTE pg_catalog.format($body$
CREATE OR REPLACE FUNCTION pgtandem.%1$I() RETURNS trigger LANGUAGE plpgsql AS $capture$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO pgtandem.%2$I (%3$s) VALUES (%5$s);
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO pgtandem.%2$I (inserted, %3$s) VALUES (true, %4$s);
    ELSIF ROW(%5$s) IS DISTINCT FROM ROW(%4$s) THEN
        INSERT INTO pgtandem.%2$I (inserted, %3$s) VALUES (true, %4$s);
        INSERT INTO pgtandem.%2$I (%3$s) VALUES (%5$s);
    ELSE
        INSERT INTO pgtandem.%2$I (%3$s) VALUES (%4$s);
    END IF;
    IF pg_catalog.current_setting('pgtandem.notified', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_catalog.set_config('pgtandem.notified', 'on', true);
        IF pg_catalog.current_setting('pgtandem.notify', true) IS DISTINCT FROM 'off' THEN
            IF pg_catalog.pg_try_advisory_lock(1885828196, 2) THEN
                PERFORM pg_catalog.pg_advisory_unlock(1885828196, 2);
            ELSE
                PERFORM pg_catalog.pg_notify('pgtandem', '');
            END IF;
        END IF;
    END IF;
    RETURN NULL;
END
$capture$$body$, v_function, v_delta, v_list, v_new, v_old);
    END IF;

    -- On a partitioned table the row trigger is cloned onto every partition,
    -- present and future, so a row moving between partitions is seen. The
    -- table is locked, so no write falls between the drop and the create.
    v_trigger_function := CASE WHEN c_capture THEN 'capture_row' ELSE v_function END;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
                WHERE t.tgrelid = rel AND t.tgname = 'pgtandem_capture' AND p.proname <> v_trigger_function) THEN
        EXECUTE pg_catalog.format('DROP TRIGGER pgtandem_capture ON %s', rel);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = rel AND tgname = 'pgtandem_capture') THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER pgtandem_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
            'FOR EACH ROW EXECUTE FUNCTION pgtandem.%I(%s)', rel, v_trigger_function,
            CASE WHEN c_capture THEN pg_catalog.quote_literal(v_delta) ELSE '' END);
    END IF;
    IF c_capture THEN
        EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS pgtandem.%I()', v_function);
    END IF;
    FOR v_part IN SELECT relid FROM pg_catalog.pg_partition_tree(rel) LOOP
        PERFORM pgtandem.add_truncate_trigger(v_part, v_id);
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_tree(rel)) THEN
        PERFORM pgtandem.add_truncate_trigger(rel, v_id);
    END IF;
    RETURN v_id;
END
$fn$;
