package outbox_test

import (
	"context"
	"database/sql"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/outbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// An order and its confirmation email, committed together with pgx. (Not
// run: it needs the application's database; the tests do the same against
// a real one.)
func ExampleWriter_Pgx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@localhost:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	ob, err := outbox.NewWriter(outbox.Config{})
	if err != nil {
		log.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO orders (id, total) VALUES ($1, $2)`, "ORD-12345", 59.98); err != nil {
		log.Fatal(err)
	}
	if _, err := ob.Pgx(tx).SendEmail(ctx, tasks.SendEmail{
		SendOptions: customerio.SendOptions{
			TransactionalMessageID: "order_confirmation",
			Identifiers:            &customerio.Identifiers{ID: "user-1002"},
			MessageData:            map[string]any{"order_id": "ORD-12345", "total": 59.98},
		},
		To: "grace@example.com",
	}, producer.IdempotencyKey("order-ORD-12345:confirmation")); err != nil {
		log.Fatal(err) // a *producer.ValidationError names the field; nothing was written
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
}

// The same with database/sql (here with pgx's stdlib driver, "pgx").
func ExampleWriter_SQL() {
	ctx := context.Background()
	db, err := sql.Open("pgx", "postgres://app@localhost:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	ob, _ := outbox.NewWriter(outbox.Config{})
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, total) VALUES ($1, $2)`, "ORD-12346", 19.99); err != nil {
		log.Fatal(err)
	}
	if _, err := ob.SQL(tx).Track(ctx, tasks.Track{
		Identifiers: customerio.Identifiers{ID: "user-1002"},
		Event:       customerio.Event{Name: "order_completed", Data: map[string]any{"order_id": "ORD-12346"}},
	}); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
}
