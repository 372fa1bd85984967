package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// TaskIDPrefix starts the task id of every row written without an
// idempotency key ("o-" and a ULID); keyed rows get the producer's "k-"
// hash of the key, asynq's own ids are UUIDs, so the three never meet.
const TaskIDPrefix = "o-"

// Config configures a Writer.
type Config struct {
	// Schema is the PostgreSQL schema of the outbox table (DefaultSchema,
	// "cioq", when empty); `cioq outbox migrate --schema` creates it.
	Schema string
	// DefaultWorkspace is the workspace of tasks written without a
	// producer.Workspace option ("" = Customer.io's default workspace), as
	// producer.WithDefaultWorkspace.
	DefaultWorkspace string
	// Workspaces, when not nil, are the workers' workspace names: a task
	// naming another is refused, as producer.Workspaces does.
	Workspaces []string
	// Contracts, when not nil, are checked (and applied, for coercions)
	// before a row is written, as producer.WithContracts does.
	Contracts *contracts.Set
}

// Writer writes tasks into the outbox table inside the application's own
// transaction. It holds no connection and is safe for concurrent use; bind
// it to a transaction with Pgx or SQL.
type Writer struct {
	prep   *producer.Preparer
	insert string
}

// NewWriter returns a Writer for cfg. An invalid schema or workspace name
// is an error.
func NewWriter(cfg Config) (*Writer, error) {
	q, err := quoteSchema(cfg.Schema)
	if err != nil {
		return nil, err
	}
	if err := tasks.ValidateWorkspace(cfg.DefaultWorkspace); err != nil {
		return nil, fmt.Errorf("outbox: DefaultWorkspace: %w", err)
	}
	opts := []producer.Option{producer.WithDefaultWorkspace(cfg.DefaultWorkspace)}
	if cfg.Workspaces != nil {
		opts = append(opts, producer.Workspaces(cfg.Workspaces...))
	}
	if cfg.Contracts != nil {
		opts = append(opts, producer.WithContracts(cfg.Contracts))
	}
	return &Writer{
		prep: producer.NewPreparer(opts...),
		insert: "INSERT INTO " + q + ".outbox (task_type, envelope, queue, idempotency_key, task_id, workspace, process_at, max_retry, timeout_ms) " +
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
	}, nil
}

// Pgx binds the Writer to a pgx transaction (pgx.Tx, as pgx.Conn.Begin and
// pgxpool.Pool.Begin return it).
func (w *Writer) Pgx(tx pgx.Tx) *Tx {
	return &Tx{w: w, insert: func(ctx context.Context, args ...any) (int64, error) {
		var id int64
		err := tx.QueryRow(ctx, w.insert, args...).Scan(&id)
		return id, err
	}}
}

// SQL binds the Writer to a database/sql transaction on PostgreSQL (any
// driver: pgx's stdlib, lib/pq).
func (w *Writer) SQL(tx *sql.Tx) *Tx {
	return &Tx{w: w, insert: func(ctx context.Context, args ...any) (int64, error) {
		var id int64
		err := tx.QueryRowContext(ctx, w.insert, args...).Scan(&id)
		return id, err
	}}
}

// Tx is a Writer bound to one transaction. Its methods are the producer's
// (producer.Client): the same payloads, options (producer.IdempotencyKey,
// ExpiresIn, Workspace, Queue, ProcessIn, ...), validation and errors (a
// *producer.ValidationError naming the field, and nothing written). Each
// writes one row, which exists for the relay only once the transaction
// commits: a rolled-back transaction enqueues nothing. Nothing touches
// Redis.
type Tx struct {
	w      *Writer
	insert func(ctx context.Context, args ...any) (int64, error)
}

// Receipt says what a Tx wrote.
type Receipt struct {
	// ID is the outbox row's id.
	ID int64
	// TaskID is the asynq task id the relay will enqueue under: "o-" and a
	// ULID for a task without idempotency key; "" with one, whose id is
	// the key's keyed hash under the deployment's secret
	// (producer.Client.TaskIDForKey).
	TaskID string
	// Key is the idempotency key as given ("" without one). It may name a
	// person: keep it out of logs.
	Key string
	// Queue is the asynq queue.
	Queue string
	// Type is the task type, e.g. tasks.TypeSendEmail.
	Type string
}

// Enqueue validates p as producer.Client.Enqueue does and writes it to the
// outbox in the transaction. The trace context of ctx's span goes into the
// row's envelope, as Enqueue puts it into a task's: the worker's spans are
// children of the span the application had when it wrote the row.
func (t *Tx) Enqueue(ctx context.Context, p tasks.Payload, opts ...producer.EnqueueOption) (Receipt, error) {
	pr, err := t.w.prep.PrepareContext(ctx, p, opts...)
	if err != nil {
		return Receipt{}, outboxError(err)
	}
	return t.write(ctx, pr)
}

// EnqueueRaw validates a task given as its type name and JSON payload as
// producer.Client.EnqueueRaw does and writes it to the outbox in the
// transaction.
func (t *Tx) EnqueueRaw(ctx context.Context, typ string, payload json.RawMessage, opts ...producer.EnqueueOption) (Receipt, error) {
	pr, err := t.w.prep.PrepareRawContext(ctx, typ, payload, opts...)
	if err != nil {
		return Receipt{}, outboxError(err)
	}
	return t.write(ctx, pr)
}

// outboxError renames the producer's errors ("producer: cio:send_email: …")
// as the outbox's, keeping what they wrap.
func outboxError(err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "producer: "); ok {
		msg = rest
	}
	return &prefixed{msg: "outbox: " + msg, err: err}
}

type prefixed struct {
	msg string
	err error
}

func (e *prefixed) Error() string { return e.msg }
func (e *prefixed) Unwrap() error { return e.err }

func (t *Tx) write(ctx context.Context, pr producer.Prepared) (Receipt, error) {
	var key, taskID, processAt any
	r := Receipt{Key: pr.Key, Queue: pr.Queue, Type: pr.Type}
	if pr.Key != "" {
		key = pr.Key
	} else {
		r.TaskID = TaskIDPrefix + ulid.Make().String()
		taskID = r.TaskID
	}
	if !pr.ProcessAt.IsZero() {
		processAt = pr.ProcessAt
	}
	id, err := t.insert(ctx, pr.Type, string(pr.Envelope), pr.Queue, key, taskID, pr.Workspace, processAt,
		pr.MaxRetry, pr.Timeout.Milliseconds())
	if err != nil {
		return Receipt{}, fmt.Errorf("outbox: %s: write: %w", pr.Type, err)
	}
	r.ID = id
	return r, nil
}

// timeoutOf reads a row's timeout_ms.
func timeoutOf(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
