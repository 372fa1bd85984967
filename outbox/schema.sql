-- cioq transactional outbox: rows written inside the application's
-- transaction (outbox.Writer), relayed into Redis by `cioq relay`.
-- Created by `cioq outbox migrate`; with another migration tool, apply this
-- file (replace the schema name cioq throughout to use another schema).
-- Safe to apply again.
CREATE SCHEMA IF NOT EXISTS "cioq";

CREATE TABLE IF NOT EXISTS "cioq".outbox (
    -- The relay claims rows in id order through the primary key:
    -- SELECT ... WHERE failed IS NULL ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED.
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_type       text        NOT NULL,
    -- The task's bytes as the producer encodes them (tasks.Encode).
    envelope        json        NOT NULL,
    queue           text        NOT NULL,
    -- The application's idempotency key; the task id is its keyed hash.
    idempotency_key text,
    -- Without a key: the task id the relay enqueues under.
    task_id         text,
    workspace       text        NOT NULL DEFAULT '',
    process_at      timestamptz,
    max_retry       integer     NOT NULL,
    timeout_ms      bigint      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Set by the relay when Redis refused the row for good (kept, not retried).
    failed          text,
    CONSTRAINT outbox_task_id CHECK (idempotency_key IS NOT NULL OR task_id IS NOT NULL)
);

CREATE OR REPLACE FUNCTION "cioq".outbox_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cioq_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS outbox_notify ON "cioq".outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON "cioq".outbox
    FOR EACH STATEMENT EXECUTE FUNCTION "cioq".outbox_notify();
