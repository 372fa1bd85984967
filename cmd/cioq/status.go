package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/status"
)

func runStatus(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "status", "TASK_ID | --key KEY [--json] [--payload]",
		"Prints a task's timeline: enqueued, each failed attempt (class, status,\n"+
			"Customer.io's message), accepted (with Customer.io's delivery or trigger\n"+
			"id), then what Customer.io reported through its reporting webhooks (cioq\n"+
			"serve's receiver) or the workers' fallback poll: sent, delivered, opened,\n"+
			"clicked, bounced, failed (with Customer.io's reason), ..., or dead-lettered.\n"+
			"Timelines are kept for transactional sends and broadcast triggers\n"+
			"(CIOQ_STATUS_TTL, 30 days); for other tasks it shows asynq's record while\n"+
			"asynq keeps one. STATE is the most advanced state reported, whatever the\n"+
			"order reports arrived in (a bounce outranks a delivery).\n\n"+
			"Person data Customer.io reported (recipients, customer ids, clicked links,\n"+
			"addresses in reasons) is redacted unless --payload is given. Exit code 1\n"+
			"when Redis holds nothing of the task.\n\n"+
			"Environment: REDIS_URL, CIOQ_KEY_SECRET.")
	key := fs.String("key", "", "the idempotency key the task was enqueued with, instead of TASK_ID")
	asJSON := fs.Bool("json", false, "print the timeline as JSON")
	payload := fs.Bool("payload", false, "show person data Customer.io reported (recipient, customer id, links)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id := ""
	switch {
	case *key != "" && fs.NArg() > 0:
		return usageErrorf("give TASK_ID or --key, not both")
	case *key == "" && fs.NArg() != 1:
		return usageErrorf("want one TASK_ID (or --key KEY)")
	case *key == "":
		id = fs.Arg(0)
	}
	_, rurl, popts, err := redisEnv(a)
	if err != nil {
		return err
	}
	rdb, err := redisconf.NewClient(rurl)
	if err != nil {
		return configError(err)
	}
	defer rdb.Close()
	if *key != "" {
		if len(popts) == 0 {
			n, err := rdb.Exists(ctx, producer.KeySecretRedisKey).Result()
			if err != nil {
				return err
			}
			if n == 0 { // no secret: no task was ever enqueued with a key
				return fmt.Errorf("no task with that idempotency key in Redis")
			}
		}
		if id, err = producer.NewFromRedis(rdb, popts...).TaskIDForKey(ctx, *key); err != nil {
			return err
		}
	}
	tl, err := status.NewStore(rdb, status.Options{}).Lookup(ctx, id, status.LookupOptions{ShowIdentifiers: *payload})
	if errors.Is(err, status.ErrNotFound) {
		what := "task " + id
		if *key != "" {
			what = "task with that idempotency key (" + id + ")"
		}
		return fmt.Errorf("no %s in Redis: never enqueued, or gone (a timeline is kept %s; other tasks only while asynq keeps them; dead letters: cioq dlq show)", what, "CIOQ_STATUS_TTL")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(tl)
	}
	printTimeline(a.stdout, tl)
	return nil
}

// printTimeline writes a timeline as `cioq status` shows it.
func printTimeline(w io.Writer, tl *status.Timeline) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	desc := []string{}
	for _, kv := range [][2]string{{"", tl.Type}, {"queue ", tl.Queue}, {"workspace ", workspaceLabel(tl.Workspace)}} {
		if kv[1] != "" {
			desc = append(desc, kv[0]+kv[1])
		}
	}
	fmt.Fprintf(tw, "Task\t%s (%s)\n", tl.TaskID, strings.Join(desc, ", "))
	if tl.Template != "" {
		fmt.Fprintf(tw, "Template\t%s\n", tl.Template)
	}
	if tl.TraceID != "" {
		fmt.Fprintf(tw, "Trace\t%s\n", tl.TraceID)
	}
	state := tl.State
	if tl.Final {
		state += " (final)"
	}
	if !tl.NextAttemptAt.IsZero() {
		state += ", next attempt " + stamp(tl.NextAttemptAt)
	}
	fmt.Fprintf(tw, "State\t%s\n", state)
	if tl.Reason != "" {
		fmt.Fprintf(tw, "Reason\t%s\n", tl.Reason)
	}
	if tl.Delivery != "" {
		fmt.Fprintf(tw, "Delivery\t%s\n", tl.Delivery)
	}
	if len(tl.Counts) > 0 && strings.HasPrefix(tl.Delivery, "trigger:") {
		fmt.Fprintf(tw, "Reported\t%s\n", tl.CountsText())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tEVENT\tSOURCE\tDETAIL")
	for _, e := range tl.Entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", stamp(e.At), e.Label(), e.Source, e.Detail())
	}
	tw.Flush()
	if tl.Omitted > 0 {
		fmt.Fprintf(w, "(%d older entries or events not kept)\n", tl.Omitted)
	}
}

func stamp(t time.Time) string {
	if t.Nanosecond() == 0 {
		return t.UTC().Format(time.RFC3339)
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
