package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// OutboxOptions is what RunOutbox needs.
type OutboxOptions struct {
	// Out receives the progress.
	Out io.Writer
	// Postgres is the connection string of the demo's database
	// (CIOQ_OUTBOX_URL; `make run` starts a throwaway server).
	Postgres string
	// Relay is the relay running against that database.
	Relay *outbox.Relay
	// Sandbox, when set, is where the worker delivers; nil against real
	// endpoints (then the demo waits for the rows to leave the table).
	Sandbox *sandbox.Running
	// Timeout bounds the wait for the delivery.
	Timeout time.Duration
}

// MigrateOutbox creates the outbox table in the demo's database; call it
// before starting the relay RunOutbox is given, so the relay finds its
// table.
func MigrateOutbox(ctx context.Context, postgres string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, postgres)
	if err != nil {
		return fmt.Errorf("outbox demo: connect: %w", err)
	}
	defer conn.Close(context.Background())
	return outbox.Migrate(ctx, conn, "")
}

// RunOutbox shows the transactional outbox: an order saved and its
// confirmation email enqueued in one PostgreSQL transaction (delivered once
// the relay moved it into Redis), then an order whose transaction rolls
// back (payment declined) and whose confirmation is never sent. The
// outbox table exists already (MigrateOutbox).
func RunOutbox(ctx context.Context, o OutboxOptions) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, o.Postgres)
	if err != nil {
		return fmt.Errorf("outbox demo: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS public.demo_orders (id text PRIMARY KEY, total numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("outbox demo: %w", err)
	}
	w, err := outbox.NewWriter(outbox.Config{})
	if err != nil {
		return err
	}
	run := strings.ToLower(ulid.Make().String()[20:])
	paid, declined := "ORD-"+run+"-1", "ORD-"+run+"-2"
	fmt.Fprintf(o.Out, "\nTransactional outbox (PostgreSQL, relayed into Redis by the relay):\n")

	// 1. The order and its confirmation commit together.
	rc, err := saveOrder(ctx, conn, w, paid, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "  committed order %s and its confirmation email in one transaction (outbox row %d)\n", paid, rc.ID)
	// 2. The payment is declined: the transaction rolls back, and the
	// confirmation written in it goes with the order.
	if _, err := saveOrder(ctx, conn, w, declined, false); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "  rolled back order %s (payment declined) with its confirmation\n", declined)

	if o.Sandbox != nil {
		if err := o.Sandbox.WaitFor(ctx, func(s *sandbox.Server) bool { return deliveredOrder(s, paid) > 0 }); err != nil {
			return fmt.Errorf("outbox demo: the confirmation of %s was not delivered: %w", paid, err)
		}
	}
	for {
		b, err := o.Relay.Backlog(ctx)
		if err == nil && b.Waiting == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("outbox demo: the outbox did not drain: %w", errors.Join(err, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
	var orders int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.demo_orders WHERE id = ANY($1)`, []string{paid, declined}).Scan(&orders); err != nil {
		return fmt.Errorf("outbox demo: %w", err)
	}
	if o.Sandbox != nil {
		fmt.Fprintf(o.Out, "  delivered the confirmation of %s once (%d send); %s: %d sends, %d of the 2 orders in the database\n",
			paid, deliveredOrder(o.Sandbox.Server, paid), declined, deliveredOrder(o.Sandbox.Server, declined), orders)
	} else {
		fmt.Fprintf(o.Out, "  relayed the confirmation of %s into Redis; %s left nothing to relay (%d of the 2 orders in the database)\n", paid, declined, orders)
	}
	return nil
}

// saveOrder inserts an order and writes its confirmation in one
// transaction, then commits it or rolls it back.
func saveOrder(ctx context.Context, conn *pgx.Conn, w *outbox.Writer, id string, commit bool) (outbox.Receipt, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return outbox.Receipt{}, fmt.Errorf("outbox demo: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO public.demo_orders (id, total) VALUES ($1, 59.98)`, id); err != nil {
		return outbox.Receipt{}, fmt.Errorf("outbox demo: %w", err)
	}
	rc, err := w.Pgx(tx).SendEmail(ctx, tasks.SendEmail{
		SendOptions: customerio.SendOptions{
			TransactionalMessageID: "order_confirmation",
			Identifiers:            &customerio.Identifiers{ID: "user-1004"},
			MessageData:            map[string]any{"order_id": id, "total": 59.98},
		},
		To: "margaret@example.com",
	}, producer.IdempotencyKey("order-"+id+":confirmation"))
	if err != nil {
		return outbox.Receipt{}, err
	}
	if commit {
		if err := tx.Commit(ctx); err != nil {
			return outbox.Receipt{}, fmt.Errorf("outbox demo: %w", err)
		}
	}
	return rc, nil
}

// deliveredOrder counts the sandbox's sends of an order's confirmation.
func deliveredOrder(s *sandbox.Server, id string) int {
	n := 0
	for _, d := range s.Deliveries() {
		if d.MessageData["order_id"] == id {
			n++
		}
	}
	return n
}
