package outbox

import (
	"context"
	_ "embed" // schema.sql
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultSchema is the PostgreSQL schema of the outbox table unless a
// Config names another.
const DefaultSchema = "cioq"

// Table is the outbox table's name inside its schema.
const Table = "outbox"

// Channel is the LISTEN/NOTIFY channel the table's trigger notifies at each
// commit that inserted rows (the payload is the schema's name), so a relay
// wakes at once instead of polling.
const Channel = "cioq_outbox"

// SchemaSQL is the migration for DefaultSchema, as shipped in
// outbox/schema.sql for teams that apply migrations with their own tool
// (replace the schema name cioq throughout to use another).
//
//go:embed schema.sql
var SchemaSQL string

// schemaTemplate is the migration, with {{schema}} where the quoted schema
// name goes. schema.sql is it rendered for DefaultSchema (a test checks
// they agree).
const schemaTemplate = `-- cioq transactional outbox: rows written inside the application's
-- transaction (outbox.Writer), relayed into Redis by ` + "`cioq relay`" + `.
-- Created by ` + "`cioq outbox migrate`" + `; with another migration tool, apply this
-- file (replace the schema name cioq throughout to use another schema).
-- Safe to apply again.
CREATE SCHEMA IF NOT EXISTS {{schema}};

CREATE TABLE IF NOT EXISTS {{schema}}.outbox (
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

CREATE OR REPLACE FUNCTION {{schema}}.outbox_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cioq_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS outbox_notify ON {{schema}}.outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON {{schema}}.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.outbox_notify();
`

// MigrationSQL returns the statements that create the outbox table, its
// notify trigger and their schema (safe to run again), for schema ("" =
// DefaultSchema). An invalid schema name is an error.
func MigrationSQL(schema string) (string, error) {
	q, err := quoteSchema(schema)
	if err != nil {
		return "", err
	}
	return renderSchema(q), nil
}

func renderSchema(quoted string) string {
	return strings.ReplaceAll(schemaTemplate, "{{schema}}", quoted)
}

// Migrate creates the outbox table in schema ("" = DefaultSchema) over
// db (a *pgx.Conn or *pgxpool.Pool), in one transaction under an advisory lock (two migrations at once
// wait for each other). Running it again changes nothing.
func Migrate(ctx context.Context, db Beginner, schema string) error {
	sql, err := MigrationSQL(schema)
	if err != nil {
		return err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('cioq outbox migrate'))"); err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	return nil
}

// Beginner starts a transaction: a *pgx.Conn or a *pgxpool.Pool.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ErrSchema is wrapped by the error for an invalid schema name.
var ErrSchema = errors.New("invalid schema name")

// quoteSchema checks a schema name (1 to 63 characters: lower-case letters,
// digits and '_', not starting with a digit) and returns it quoted.
func quoteSchema(s string) (string, error) {
	if s == "" {
		s = DefaultSchema
	}
	if len(s) > 63 {
		return "", fmt.Errorf("outbox: %w: at most 63 characters", ErrSchema)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return "", fmt.Errorf("outbox: %w: want lower-case letters, digits and '_', not starting with a digit", ErrSchema)
		}
	}
	return pgx.Identifier{s}.Sanitize(), nil
}
