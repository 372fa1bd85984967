// Package outbox enqueues cioq tasks inside the application's own
// PostgreSQL transaction (a transactional outbox) and relays them into
// Redis afterwards, so an order and its confirmation email are committed
// together or not at all: no send lost to a crash between the commit and
// the enqueue, none sent for an order that was rolled back.
//
//	ob, _ := outbox.NewWriter(outbox.Config{})
//	tx, _ := pool.Begin(ctx) // pgx; or db.BeginTx for database/sql, then ob.SQL(tx)
//	tx.Exec(ctx, `INSERT INTO orders ...`)
//	ob.Pgx(tx).SendEmail(ctx, tasks.SendEmail{...}, producer.IdempotencyKey("order-123:confirmation"))
//	tx.Commit(ctx)
//
// A Writer bound to a transaction (Pgx for a pgx.Tx, SQL for a *sql.Tx)
// has the producer's typed methods, options, validation and errors
// (producer.Preparer does the work): invalid input is refused before
// anything is written, and a valid task is one INSERT of a row into the
// outbox table. Nothing touches Redis inside the transaction. The trace
// context of the ctx's OpenTelemetry span goes into the row's envelope
// (producer.Preparer.PrepareContext), so the worker's spans are children
// of the span the application had when it wrote the row, however late the
// relay enqueues it.
//
// The table (MigrationSQL; `cioq outbox migrate`, or outbox/schema.sql for
// another migration tool) lives in a schema of its own, "cioq" by default.
// Its trigger NOTIFYs channel cioq_outbox at each commit that inserted rows.
//
// A Relay (`cioq relay`, or `cioq worker` with CIOQ_OUTBOX_URL) claims
// committed rows in id order in batches with FOR UPDATE SKIP LOCKED,
// enqueues each into Redis under its task id and deletes the rows Redis
// accepted in the claim's own transaction:
//
//   - A relay killed at any point loses no row: an uncommitted claim rolls
//     back and the rows are claimed again.
//   - It creates no second task: a row's task id is the idempotency key's
//     keyed hash (the relay's producer derives it, under the deployment's
//     secret, so the Writer needs none) or, without a key, "o-" and a ULID
//     written into the row; a row relayed again is a duplicate that asynq
//     refuses, for as long as the first task exists and, after it
//     completes, for the relay's DedupWindow (keyed: the producer's
//     idempotency window).
//   - Relays run side by side: SKIP LOCKED gives each its own rows.
//   - LISTEN/NOTIFY wakes a relay at each commit; a slow poll
//     (PollInterval) is the safety net.
//   - Redis or PostgreSQL down: rows wait in the table, Check fails
//     (/readyz), and the relay retries with backoff until they are back.
//
// Rows Redis refuses for good (a row a newer or older cioq wrote with a
// type this one does not know) are marked in the failed column and kept
// for an operator; they are not retried. Tasks from the outbox carry no
// per-person ordering stamp (producer.WithOrdering needs Redis at enqueue).
package outbox
