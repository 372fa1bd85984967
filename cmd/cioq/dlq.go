package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/worker"
)

const dlqHelp = `Operates cioq's dead letter store (tasks Customer.io refused for good, that
expired, were invalid, or used up their retries). Nothing leaves it unless
you retry, delete or purge it here: the dashboard shows archived tasks but
refuses to run or delete them, which would bypass this store.

Subcommands:
%s
Run ` + "`cioq dlq <subcommand> -h`" + ` for its arguments and flags.

` + dlqFiltersHelp + `

` + dlqAttemptsHelp + `

An ID is a dead letter's id as list shows it; a KEY is the idempotency key
its task was enqueued with (hashed into the task id the way the producer
does, with CIOQ_KEY_SECRET or the deployment's generated secret).
Payloads (person identifiers, emails, message data, idempotency keys) are
redacted unless --payload is given.

Environment: REDIS_URL, CIOQ_KEY_SECRET, CIOQ_REDIS_ACK_REPLICAS,
CIOQ_REDIS_ACK_TIMEOUT (retry, delete and purge wait for that many replicas),
CIOQ_QUEUE_SHARDS (retry puts a task in its logical queue's shard; lists,
--queue and stats name logical queues).`

const dlqFiltersHelp = `Filters, for list, stats, export, purge and retry --all (show, retry ID... and
delete take IDs only):
  --queue Q --type T --class permanent|expired|invalid|exhausted|config
  --since T --until T (RFC 3339, or a duration before now: 24h, 7d)`

const dlqAttemptsHelp = `Attempts are shown as made/allowed: the attempts that spent the task's retry
budget, the last one included, out of the attempts that budget allows (the
task's max_retry retries and its first attempt: 298 unless the producer set
another budget). Attempts refused with 429 or for credentials (401, none
configured) do not spend it and are not counted, nor are waits for a rate
limit or for a person's earlier task, nor the retries of a transient failure
once the budget is spent while the retry window (24 h) is still open. A
worker crash during an attempt counts. The history lists every failed
attempt, counted or not, with its time, class, status and reason (the newest
20 of one task's retries, 100 in all; the number left out is shown). A task
enqueued by an earlier cioq version is allowed max_retry attempts, and a
crash can make its attempts one more than allowed.`

// dlqSub is one `cioq dlq` subcommand.
type dlqSub struct {
	name string
	// args is the synopsis after `cioq dlq NAME`.
	args    string
	summary string
	details string
	// filters: the subcommand takes the filter flags.
	filters bool
	// define defines the subcommand's own flags and returns what runs it.
	define func(d *dlqCmd, fs *flag.FlagSet) func(context.Context) error
}

func dlqSubs() []dlqSub {
	return []dlqSub{
		{name: "list", args: "[filters] [--json] [--limit N]", filters: true,
			summary: "list matching dead letters, oldest failure first",
			details: "Prints a table (id, type, queue, class, status, attempts made/allowed, last\n" +
				"failure, message) or, with --json, one JSON object per line (as export, without\n" +
				"history and payload). The count goes to stderr.\n\n" + dlqFiltersHelp + "\n\n" + dlqAttemptsHelp,
			define: func(d *dlqCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.BoolVar(&d.json, "json", false, "print JSON lines instead of a table")
				fs.IntVar(&d.limit, "limit", 0, "print at most N (0 = all)")
				return d.list
			}},
		{name: "show", args: "ID|KEY [--payload] [--json]",
			summary: "show one dead letter: its failure, attempts, every attempt's outcome, the payload",
			details: "The history lists every failed attempt, oldest first: time, attempt number,\n" +
				"class (transient, throttled, auth for an attempt that was retried; the\n" +
				"dead-letter class for the last), HTTP status and reason, including the\n" +
				"attempts of the dead letter it was retried from. The payload is redacted\n" +
				"unless --payload is given.\n\n" + dlqAttemptsHelp,
			define: func(d *dlqCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.BoolVar(&d.json, "json", false, "print JSON")
				fs.BoolVar(&d.payload, "payload", false, "show the payload unredacted")
				return d.show
			}},
		{name: "retry", args: "ID|KEY... [--expires-in D | --no-expiry]\n       cioq dlq retry --all [filters] [--rate 50/s] [--expires-in D | --no-expiry]", filters: true,
			summary: "re-enqueue dead letters as new tasks with a full retry budget",
			details: "Each dead letter's task is enqueued again as a new task (a new id, the same\n" +
				"type, payload and queue, a full retry budget and a new 24 h retry window);\n" +
				"the dead letter is removed only once the new task is in Redis, and the new\n" +
				"task keeps its history. Prints one JSON line per retried dead letter\n" +
				"(dead_letter, task_id, queue, type).\n\n" +
				"Retrying is safe to repeat: the new task's id is derived from the dead letter,\n" +
				"so a dead letter whose task is in Redis already (a retry interrupted after the\n" +
				"enqueue, e.g. by Ctrl-C, or run by two operators at once) is not enqueued again:\n" +
				"it is reported as already retried (its JSON line has \"already_retried\": true)\n" +
				"and removed.\n\n" +
				"A dead letter whose task has expired (class expired, or an expiry already\n" +
				"past in any class) would be dead-lettered again at once: it is skipped, with\n" +
				"the reason on stderr, unless --expires-in D gives the retried tasks a new\n" +
				"expiry D from now or --no-expiry removes it (for every task retried).\n" +
				"Exits 1 when any dead letter was skipped or failed.\n\n" + dlqFiltersHelp,
			define: func(d *dlqCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.BoolVar(&d.all, "all", false, "retry every dead letter matching the filters")
				fs.StringVar(&d.rate, "rate", "50/s", "at most this many retries per second with --all (N/s or N/m)")
				fs.DurationVar(&d.expiresIn, "expires-in", 0, "give each retried task a new expiry this long from now (e.g. 1h), replacing any it had; retries expired dead letters")
				fs.BoolVar(&d.noExpiry, "no-expiry", false, "remove each retried task's expiry (it is sent however late); retries expired dead letters")
				d.progress = addProgressFlags(fs)
				return d.retry
			}},
		{name: "delete", args: "ID|KEY...",
			summary: "delete these dead letters (and asynq's archive entries of their tasks)",
			details: "Unknown ids are reported on stderr and make the exit status 1. Use purge to\n" +
				"delete by filter.",
			define: func(d *dlqCmd, fs *flag.FlagSet) func(context.Context) error { return d.delete }},
		{name: "purge", args: "[filters] --yes", filters: true,
			summary: "delete every dead letter matching the filters",
			details: "Without --yes it deletes nothing and says how many it would delete.\n\n" + dlqFiltersHelp,
			define: func(d *dlqCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.BoolVar(&d.yes, "yes", false, "really delete")
				return d.purge
			}},
		{name: "stats", args: "[filters] [--json]", filters: true,
			summary: "count matching dead letters by queue, type, class and HTTP status",
			details: dlqFiltersHelp,
			define: func(d *dlqCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.BoolVar(&d.json, "json", false, "print JSON")
				return d.stats
			}},
		{name: "export", args: "[filters] [--payload]", filters: true,
			summary: "print matching dead letters with their history as JSON lines",
			details: "One JSON object per line: id, type, queue, workspace, class, status, message,\n" +
				"error, attempts, attempts_allowed, first_failed_at, last_failed_at,\n" +
				"retried_from, history (at, attempt, class, status, message, error),\n" +
				"history_omitted and the payload (redacted unless --payload is given).\n\n" +
				dlqFiltersHelp + "\n\n" + dlqAttemptsHelp,
			define: func(d *dlqCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.BoolVar(&d.payload, "payload", false, "include payloads unredacted")
				d.progress = addProgressFlags(fs)
				return d.export
			}},
	}
}

// dlqOverview is the help of `cioq dlq` itself.
func dlqOverview() string {
	var b strings.Builder
	for _, s := range dlqSubs() {
		fmt.Fprintf(&b, "  %-7s %s\n", s.name, s.summary)
	}
	sum := summaryOf("dlq")
	return fmt.Sprintf("Usage: cioq dlq <subcommand> [arguments] [flags]\n\n%s.\n\n"+dlqHelp+"\n", strings.ToUpper(sum[:1])+sum[1:], b.String())
}

func runDLQ(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, dlqOverview())
		return &usageError{err: errors.New("missing subcommand")}
	}
	if args[0] == "help" || isHelpArg(args[0]) {
		if len(args) > 1 && !isHelpArg(args[1]) {
			// `cioq dlq help SUB` is `cioq dlq SUB -h`.
			return runDLQ(ctx, a, []string{args[1], "-h"})
		}
		fmt.Fprint(a.stdout, dlqOverview())
		return flag.ErrHelp
	}
	name, args := args[0], args[1:]
	var sub *dlqSub
	for _, s := range dlqSubs() {
		if s.name == name {
			sub = &s
			break
		}
	}
	if sub == nil {
		fmt.Fprint(a.stderr, dlqOverview())
		return usageErrorf("unknown subcommand %q", name)
	}
	d := &dlqCmd{a: a}
	fs := newFlagSet(a, "dlq "+sub.name, sub.args, sub.details)
	if sub.filters {
		d.addFilters(fs)
	}
	run := sub.define(d, fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d.fs = fs
	d.args = fs.Args()
	if err := d.parseFilter(); err != nil {
		return err
	}
	if name != "show" && name != "retry" && name != "delete" && len(d.args) > 0 {
		return usageErrorf("unexpected argument %q", d.args[0])
	}
	_, rurl, popts, err := redisEnv(a)
	if err != nil {
		return err
	}
	_, rdb, acks, err := ackedRedis(a.getenv, rurl)
	if err != nil {
		return err
	}
	defer rdb.Close()
	d.rdb = rdb
	d.inspector = asynq.NewInspectorFromRedisClient(rdb)
	d.store = worker.NewDeadLetters(rdb, d.inspector)
	if err := d.store.SetReplicas(ctx, acks.Replicas, acks.Timeout); err != nil {
		return configError(err)
	}
	shards, err := shardSettings(a.getenv)
	if err != nil {
		return err
	}
	d.store.SetShards(shards) // a retry goes to its logical queue's shard under CIOQ_QUEUE_SHARDS
	// popts also holds the acknowledgement options: the secret is set when
	// CIOQ_KEY_SECRET is.
	d.keys, d.keySecretSet = producer.NewFromRedis(rdb, popts...), strings.TrimSpace(a.getenv(envKeySecret)) != ""
	return run(ctx)
}

type dlqCmd struct {
	a         *app
	rdb       redis.UniversalClient
	inspector *asynq.Inspector
	store     *worker.DeadLetters
	fs        *flag.FlagSet
	args      []string
	// keys hashes an idempotency key given instead of an id into its task
	// id; keySecretSet is whether CIOQ_KEY_SECRET is set.
	keys         *producer.Client
	keySecretSet bool

	queue, typ, class, since, until string
	filter                          worker.Filter

	json, payload, all, yes bool
	limit                   int
	rate                    string
	expiresIn               time.Duration
	noExpiry                bool
	progress                *progressFlags
}

func (d *dlqCmd) addFilters(fs *flag.FlagSet) {
	fs.StringVar(&d.queue, "queue", "", "only this queue (a logical queue, e.g. default, takes in all its shards)")
	fs.StringVar(&d.typ, "type", "", "only this task type, e.g. cio:send_email")
	fs.StringVar(&d.class, "class", "", "only this class: permanent, expired, invalid, exhausted or config")
	fs.StringVar(&d.since, "since", "", "last failure at or after (RFC 3339, or a duration before now: 24h)")
	fs.StringVar(&d.until, "until", "", "last failure before (RFC 3339, or a duration before now)")
}

// filtered reports whether any filter flag was given.
func (d *dlqCmd) filtered() bool {
	return d.queue != "" || d.typ != "" || d.class != "" || d.since != "" || d.until != ""
}

func (d *dlqCmd) parseFilter() error {
	f := worker.Filter{Queue: d.queue, Type: d.typ, Class: worker.DeadLetterClass(d.class)}
	switch f.Class {
	case "", worker.DeadLetterPermanent, worker.DeadLetterExpired, worker.DeadLetterInvalid, worker.DeadLetterExhausted, worker.DeadLetterConfig:
	default:
		return usageErrorf("--class=%q: want permanent, expired, invalid, exhausted or config", d.class)
	}
	now := time.Now()
	var err error
	if f.Since, err = parseTimeArg("since", d.since, now); err != nil {
		return err
	}
	if f.Until, err = parseTimeArg("until", d.until, now); err != nil {
		return err
	}
	d.filter = f
	return nil
}

// each calls fn for every dead letter matching the filter, oldest first,
// a page of 1,000 at a time; fn returning false stops.
func (d *dlqCmd) each(ctx context.Context, fn func(*worker.DeadLetter) bool) error {
	f := d.filter
	f.Limit = 1000
	for {
		page, err := d.store.List(ctx, f)
		if err != nil {
			return fmt.Errorf("list dead letters: %w", err)
		}
		for _, dl := range page.Items {
			if !fn(dl) {
				return nil
			}
		}
		if page.Next == "" {
			return nil
		}
		f.Cursor = page.Next
	}
}

// dlqItem is the JSON form of a dead letter (list --json, show --json,
// export).
type dlqItem struct {
	ID        string                 `json:"id"`
	Type      string                 `json:"type"`
	Queue     string                 `json:"queue"`           // the logical queue
	Shard     string                 `json:"shard,omitempty"` // the asynq queue, when a shard (CIOQ_QUEUE_SHARDS)
	Workspace string                 `json:"workspace,omitempty"`
	Class     worker.DeadLetterClass `json:"class"`
	Status    int                    `json:"status,omitempty"`
	Message   string                 `json:"message,omitempty"`
	Error     string                 `json:"error,omitempty"`
	// Attempts and AttemptsAllowed are the attempts that spent the retry
	// budget and the attempts it allows (see dlqAttemptsHelp).
	Attempts        int       `json:"attempts"`
	AttemptsAllowed int       `json:"attempts_allowed"`
	FirstFailedAt   time.Time `json:"first_failed_at"`
	LastFailedAt    time.Time `json:"last_failed_at"`
	RetriedFrom     string    `json:"retried_from,omitempty"`
	// History is every failed attempt, oldest first; HistoryOmitted how
	// many older ones were not kept.
	History        []worker.Failure `json:"history,omitempty"`
	HistoryOmitted int              `json:"history_omitted,omitempty"`
	Payload        json.RawMessage  `json:"payload,omitempty"`
	// IdempotencyKey is the key the task was enqueued with, from its
	// envelope: only with --payload (it may name a person).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// PayloadRedacted is true when Payload has identifiers and message
	// data replaced (the default).
	PayloadRedacted bool `json:"payload_redacted,omitempty"`
}

func (d *dlqCmd) item(dl *worker.DeadLetter, history, payload bool) dlqItem {
	it := dlqItem{
		ID: dl.ID, Type: dl.Type, Queue: worker.LogicalQueue(dl.Queue), Workspace: dl.Workspace, Class: dl.Class,
		Status: dl.Status, Message: ops.ScrubText(dl.Message), Error: ops.ScrubText(dl.Error),
		Attempts: dl.Attempts, AttemptsAllowed: dl.AttemptsAllowed(),
		FirstFailedAt: dl.FirstFailedAt.UTC(), LastFailedAt: dl.LastFailedAt.UTC(),
		RetriedFrom: dl.RetriedFrom,
	}
	if it.Queue != dl.Queue {
		it.Shard = dl.Queue
	}
	if history {
		it.HistoryOmitted = dl.HistoryOmitted
		it.History = make([]worker.Failure, len(dl.History))
		for i, f := range dl.History {
			f.Message, f.Error = ops.ScrubText(f.Message), ops.ScrubText(f.Error)
			f.At = f.At.UTC()
			it.History[i] = f
		}
	}
	if payload {
		it.Payload = payloadJSON(dl.Payload, d.payload)
		it.PayloadRedacted = !d.payload
		if d.payload {
			it.IdempotencyKey = envelopeKey(dl.Payload)
		}
	}
	return it
}

// envelopeKey returns the idempotency key in a task's envelope, "" when
// there is none (or the bytes are no envelope).
func envelopeKey(b []byte) string {
	var env struct {
		Key string `json:"idempotency_key"`
	}
	if json.Unmarshal(b, &env) != nil {
		return ""
	}
	return env.Key
}

// ambiguousError is lookup's error for an argument that is the id of one
// dead letter and the idempotency key of another.
type ambiguousError struct{ ids []string }

func (e *ambiguousError) Error() string {
	return "names two dead letters, " + strings.Join(e.ids, " and ") + " (an id and an idempotency key): give the id"
}

// lookup finds the dead letter an argument names: its id, or the
// idempotency key of its task, hashed into the task id as the producer
// does (a key used before task ids were hashed is its own id, so both are
// looked up). worker.ErrNotFound when neither names one. The secret is
// only read when one exists: with none, no task was enqueued with a key.
func (d *dlqCmd) lookup(ctx context.Context, arg string) ([]*worker.DeadLetter, error) {
	var found []*worker.DeadLetter
	dl, err := d.store.Get(ctx, arg)
	switch {
	case err == nil:
		found = append(found, dl)
	case !errors.Is(err, worker.ErrNotFound):
		return nil, err
	}
	keyed := d.keySecretSet
	if !keyed {
		n, err := d.rdb.Exists(ctx, producer.KeySecretRedisKey).Result()
		if err != nil {
			return nil, err
		}
		keyed = n == 1
	}
	if keyed {
		id, err := d.keys.TaskIDForKey(ctx, arg)
		if err != nil {
			return nil, err
		}
		if id != arg {
			dl, err := d.store.Get(ctx, id)
			switch {
			case err == nil:
				found = append(found, dl)
			case !errors.Is(err, worker.ErrNotFound):
				return nil, err
			}
		}
	}
	if len(found) == 0 {
		return nil, worker.ErrNotFound
	}
	return found, nil
}

// lookupOne is lookup for retry and delete: exactly one dead letter.
func (d *dlqCmd) lookupOne(ctx context.Context, arg string) (*worker.DeadLetter, error) {
	found, err := d.lookup(ctx, arg)
	if err != nil {
		return nil, err
	}
	if len(found) > 1 {
		return nil, &ambiguousError{ids: []string{found[0].ID, found[1].ID}}
	}
	return found[0], nil
}

// payloadJSON renders a payload for output: redacted (ops.Redact) unless
// raw; bytes that are not JSON become a JSON string.
func payloadJSON(p []byte, raw bool) json.RawMessage {
	if len(p) == 0 {
		return nil
	}
	if raw {
		if json.Valid(p) {
			return p
		}
		b, _ := json.Marshal(string(p))
		return b
	}
	s := ops.Redact(p)
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

func (d *dlqCmd) list(ctx context.Context) error {
	out := bufio.NewWriterSize(d.a.stdout, 64<<10)
	defer out.Flush()
	n := 0
	var tw *tabwriter.Writer
	var enc *json.Encoder
	if d.json {
		enc = json.NewEncoder(out)
	} else {
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tQUEUE\tCLASS\tSTATUS\tATTEMPTS\tLAST FAILURE\tMESSAGE")
	}
	err := d.each(ctx, func(dl *worker.DeadLetter) bool {
		if d.limit > 0 && n >= d.limit {
			return false
		}
		n++
		if enc != nil {
			enc.Encode(d.item(dl, false, false))
			return true
		}
		status := "-"
		if dl.Status != 0 {
			status = strconv.Itoa(dl.Status)
		}
		msg := dl.Message
		if msg == "" {
			msg = dl.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", dl.ID, dl.Type, worker.LogicalQueue(dl.Queue), dl.Class, status,
			dl.Attempts, dl.AttemptsAllowed(), dl.LastFailedAt.UTC().Format(time.RFC3339), oneLine(ops.ScrubText(msg), 80))
		return true
	})
	if tw != nil {
		tw.Flush()
	}
	out.Flush()
	fmt.Fprintf(d.a.stderr, "%d dead letter(s)\n", n)
	return err
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return s
}

func (d *dlqCmd) show(ctx context.Context) error {
	if len(d.args) != 1 {
		return usageErrorf("show wants exactly one ID or idempotency key")
	}
	found, err := d.lookup(ctx, d.args[0])
	if errors.Is(err, worker.ErrNotFound) {
		return fmt.Errorf("no dead letter with id or idempotency key %q", d.args[0])
	}
	if err != nil {
		return err
	}
	dl := found[0]
	if len(found) > 1 {
		fmt.Fprintf(d.a.stderr, "cioq dlq show: dead letter %s has this idempotency key too (`cioq dlq show %s`)\n", found[1].ID, found[1].ID)
	}
	it := d.item(dl, true, true)
	if d.json {
		enc := json.NewEncoder(d.a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(it)
	}
	w := tabwriter.NewWriter(d.a.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
	row("ID", it.ID)
	if it.IdempotencyKey != "" {
		row("Idempotency key", it.IdempotencyKey)
	}
	row("Type", it.Type)
	row("Queue", it.Queue)
	if it.Shard != "" {
		row("Shard", it.Shard)
	}
	row("Workspace", workspaceLabel(it.Workspace))
	row("Class", string(it.Class))
	if it.Status != 0 {
		row("Status", strconv.Itoa(it.Status))
	}
	if it.Message != "" {
		row("Message", it.Message)
	}
	row("Error", it.Error)
	row("Attempts", fmt.Sprintf("%d/%d (made/allowed: attempts that spent the retry budget; see cioq dlq show -h)", it.Attempts, it.AttemptsAllowed))
	row("First failed", it.FirstFailedAt.Format(time.RFC3339))
	row("Last failed", it.LastFailedAt.Format(time.RFC3339))
	if it.RetriedFrom != "" {
		row("Retried from", it.RetriedFrom)
	}
	w.Flush()
	omitted := ""
	if it.HistoryOmitted > 0 {
		omitted = fmt.Sprintf("; %d older not kept", it.HistoryOmitted)
	}
	fmt.Fprintf(d.a.stdout, "\nHistory (%d failed attempts, oldest first%s):\n", len(it.History), omitted)
	w = tabwriter.NewWriter(d.a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  AT\tATTEMPT\tCLASS\tSTATUS\tMESSAGE / ERROR")
	for _, f := range it.History {
		status := "-"
		if f.Status != 0 {
			status = strconv.Itoa(f.Status)
		}
		text := f.Error
		if f.Message != "" {
			text = f.Message + " — " + f.Error
		}
		fmt.Fprintf(w, "  %s\t%d\t%s\t%s\t%s\n", f.At.Format("2006-01-02T15:04:05.000Z07:00"), f.Attempt, f.Class, status, oneLine(text, 160))
	}
	w.Flush()
	label := "Payload (redacted; --payload shows it):"
	if d.payload {
		label = "Payload:"
	}
	fmt.Fprintf(d.a.stdout, "\n%s\n", label)
	var pretty strings.Builder
	if b, err := json.MarshalIndent(it.Payload, "", "  "); err == nil {
		pretty.Write(b)
	} else {
		pretty.Write(it.Payload)
	}
	fmt.Fprintln(d.a.stdout, pretty.String())
	return nil
}

func (d *dlqCmd) retry(ctx context.Context) error {
	if d.all == (len(d.args) > 0) {
		return usageErrorf("give dead letter IDs or --all [filters], not both or neither")
	}
	if !d.all && d.filtered() {
		return usageErrorf("filters apply to --all only")
	}
	opts, err := d.retryOptions()
	if err != nil {
		return err
	}
	interval, err := parseRate(d.rate)
	if err != nil {
		return err
	}
	ids := d.args
	if d.all {
		err := d.each(ctx, func(dl *worker.DeadLetter) bool { ids = append(ids, dl.ID); return true })
		if err != nil {
			return err
		}
	}
	client := asynq.NewClientFromRedisClient(d.rdb)
	enc := json.NewEncoder(d.a.stdout)
	count := map[retryOutcome]int{}
	var next time.Time
	var prog *progress
	if d.all {
		prog = newProgress(d.a, d.progress, "dlq retry", int64(len(ids)), "dead letters")
		defer prog.finish()
	}
	for k, id := range ids {
		if d.all && !next.IsZero() {
			if wait := time.Until(next); wait > 0 {
				select {
				case <-ctx.Done():
					fmt.Fprintf(d.a.stderr, "interrupted: %d of %d retried\n", count[retryDone], len(ids))
					return silentError(exitFailure)
				case <-time.After(wait):
				}
			}
		}
		o := d.retryOne(ctx, client, enc, id, opts)
		count[o]++
		if prog != nil {
			prog.update(int64(k+1), fmt.Sprintf("%d of %d retried, %d failed", count[retryDone]+count[retryAlready], len(ids), count[retryFailed]+count[retrySkipped]))
		}
		if o == retryDone {
			// --rate paces the enqueues: a skipped dead letter costs no wait.
			next = time.Now().Add(interval)
		}
	}
	summary := fmt.Sprintf("%d retried, %d failed", count[retryDone], count[retryFailed])
	if count[retryAlready] > 0 {
		summary += fmt.Sprintf(", %d already retried", count[retryAlready])
	}
	if count[retrySkipped] > 0 {
		summary += fmt.Sprintf(", %d skipped (expired: see above)", count[retrySkipped])
	}
	fmt.Fprintln(d.a.stderr, summary)
	if count[retryFailed] > 0 || count[retrySkipped] > 0 {
		return silentError(exitFailure)
	}
	return nil
}

// retryOptions are the options --expires-in or --no-expiry give every
// retried task.
func (d *dlqCmd) retryOptions() ([]worker.RetryOption, error) {
	switch {
	case flagSet(d.fs, "expires-in") && d.noExpiry:
		return nil, usageErrorf("give --expires-in or --no-expiry, not both")
	case flagSet(d.fs, "expires-in"):
		if d.expiresIn <= 0 {
			return nil, usageErrorf("--expires-in=%s: want a positive duration, e.g. 1h", d.expiresIn)
		}
		return []worker.RetryOption{worker.RetryExpiresIn(d.expiresIn)}, nil
	case d.noExpiry:
		return []worker.RetryOption{worker.RetryNoExpiry()}, nil
	}
	return nil, nil
}

// retryOutcome is what became of one dead letter dlq retry was given.
type retryOutcome int

const (
	retryDone    retryOutcome = iota // re-enqueued
	retrySkipped                     // expired, and no new expiry given
	retryFailed                      // not found, or not re-enqueued
	retryAlready                     // its task was enqueued by an earlier retry; removed now
)

// retryOne re-enqueues one dead letter (id is an argument, a dead letter id
// or an idempotency key, unless --all), printing its JSON line on stdout or
// why not on stderr.
func (d *dlqCmd) retryOne(ctx context.Context, client *asynq.Client, enc *json.Encoder, id string, opts []worker.RetryOption) retryOutcome {
	if !d.all {
		dl, err := d.lookupOne(ctx, id)
		if err != nil {
			if errors.Is(err, worker.ErrNotFound) {
				fmt.Fprintf(d.a.stderr, "cioq dlq retry: %s: no such dead letter\n", id)
			} else {
				fmt.Fprintf(d.a.stderr, "cioq dlq retry: %s: not retried: %v\n", id, err)
			}
			return retryFailed
		}
		id = dl.ID
	}
	info, err := d.store.Retry(ctx, id, client, opts...)
	var expired *worker.ExpiredError
	var already *worker.AlreadyRetriedError
	switch {
	case errors.As(err, &already):
		if already.Err != nil {
			fmt.Fprintf(d.a.stderr, "cioq dlq retry: %s: already retried as %s, but the dead letter was not removed: %v\n", id, already.TaskID, already.Err)
			return retryFailed
		}
		fmt.Fprintf(d.a.stderr, "cioq dlq retry: %s: already retried as %s (not enqueued again); dead letter removed\n", id, already.TaskID)
		enc.Encode(retryLine{DeadLetter: id, TaskID: already.TaskID, Queue: worker.LogicalQueue(already.Queue), Shard: shardOf(already.Queue), Type: already.Type, AlreadyRetried: true})
		return retryAlready
	case errors.As(err, &expired):
		at := ""
		if !expired.ExpiresAt.IsZero() {
			at = " at " + expired.ExpiresAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(d.a.stderr, "cioq dlq retry: %s: skipped: its task expired%s (class %s) and would be dead-lettered again at once; give --expires-in D for a new expiry from now, or --no-expiry\n",
			id, at, expired.Class)
		return retrySkipped
	case errors.Is(err, worker.ErrNotFound):
		fmt.Fprintf(d.a.stderr, "cioq dlq retry: %s: no such dead letter\n", id)
		return retryFailed
	case err != nil && info == nil:
		fmt.Fprintf(d.a.stderr, "cioq dlq retry: %s: not retried: %v\n", id, err)
		return retryFailed
	case err != nil:
		// Enqueued, but the dead letter could not be removed.
		fmt.Fprintf(d.a.stderr, "cioq dlq retry: %s: re-enqueued as %s but the dead letter was not removed: %v\n", id, info.ID, err)
	}
	enc.Encode(retryLine{DeadLetter: id, TaskID: info.ID, Queue: worker.LogicalQueue(info.Queue), Shard: shardOf(info.Queue), Type: info.Type})
	return retryDone
}

// retryLine is the JSON line `dlq retry` prints per retried dead letter.
type retryLine struct {
	DeadLetter string `json:"dead_letter"`
	TaskID     string `json:"task_id"`
	Queue      string `json:"queue"`           // the logical queue
	Shard      string `json:"shard,omitempty"` // the asynq queue, when a shard
	Type       string `json:"type"`
	// AlreadyRetried: an earlier retry had enqueued the task; nothing was
	// enqueued now.
	AlreadyRetried bool `json:"already_retried,omitempty"`
}

// parseRate reads "50/s", "600/m" or "50" into the interval between two
// retries.
func parseRate(s string) (time.Duration, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	per := time.Second
	if ok {
		switch unit {
		case "s", "sec", "second":
		case "m", "min", "minute":
			per = time.Minute
		default:
			return 0, usageErrorf("--rate=%q: want N/s or N/m", s)
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 {
		return 0, usageErrorf("--rate=%q: want a positive N/s or N/m", s)
	}
	return time.Duration(float64(per) / n), nil
}

// delete removes the given dead letters and asynq's archive entries of
// their tasks. Unknown ids are reported and make the exit status 1.
func (d *dlqCmd) delete(ctx context.Context) error {
	if len(d.args) == 0 {
		return usageErrorf("delete wants dead letter IDs (use purge for filters)")
	}
	failed := 0
	for _, arg := range d.args {
		id := arg
		dl, err := d.lookupOne(ctx, arg)
		if err == nil {
			id = dl.ID
			err = d.store.Delete(ctx, id)
		}
		switch {
		case errors.Is(err, worker.ErrNotFound):
			failed++
			fmt.Fprintf(d.a.stderr, "cioq dlq delete: %s: no such dead letter\n", id)
		case err != nil:
			failed++
			fmt.Fprintf(d.a.stderr, "cioq dlq delete: %s: not deleted: %v\n", id, err)
		default:
			fmt.Fprintf(d.a.stdout, "deleted %s\n", id)
		}
	}
	fmt.Fprintf(d.a.stderr, "%d deleted, %d failed\n", len(d.args)-failed, failed)
	if failed > 0 {
		return silentError(exitFailure)
	}
	return nil
}

func (d *dlqCmd) purge(ctx context.Context) error {
	if !d.yes {
		n := 0
		if err := d.each(ctx, func(*worker.DeadLetter) bool { n++; return true }); err != nil {
			return err
		}
		return &usageError{err: fmt.Errorf("refusing to delete %d dead letter(s) without --yes", n),
			hint: "check them with `cioq dlq list` (same filters), then add --yes"}
	}
	n, err := d.store.Purge(ctx, d.filter)
	fmt.Fprintf(d.a.stdout, "purged %d dead letter(s)\n", n)
	return err
}

// dlqStats are the counts of `dlq stats`.
type dlqStats struct {
	Total  int            `json:"total"`
	Queue  map[string]int `json:"by_queue"`
	Type   map[string]int `json:"by_type"`
	Class  map[string]int `json:"by_class"`
	Status map[string]int `json:"by_status"`
	Oldest *time.Time     `json:"oldest_failure,omitempty"`
	Newest *time.Time     `json:"newest_failure,omitempty"`
}

func (d *dlqCmd) stats(ctx context.Context) error {
	s := dlqStats{Queue: map[string]int{}, Type: map[string]int{}, Class: map[string]int{}, Status: map[string]int{}}
	err := d.each(ctx, func(dl *worker.DeadLetter) bool {
		s.Total++
		s.Queue[worker.LogicalQueue(dl.Queue)]++
		s.Type[dl.Type]++
		s.Class[string(dl.Class)]++
		status := "none"
		if dl.Status != 0 {
			status = strconv.Itoa(dl.Status)
		}
		s.Status[status]++
		t := dl.LastFailedAt.UTC()
		if s.Oldest == nil || t.Before(*s.Oldest) {
			s.Oldest = &t
		}
		if s.Newest == nil || t.After(*s.Newest) {
			s.Newest = &t
		}
		return true
	})
	if err != nil {
		return err
	}
	if d.json {
		return json.NewEncoder(d.a.stdout).Encode(s)
	}
	w := d.a.stdout
	fmt.Fprintf(w, "dead letters: %d\n", s.Total)
	if s.Oldest != nil {
		fmt.Fprintf(w, "last failures from %s to %s\n", s.Oldest.Format(time.RFC3339), s.Newest.Format(time.RFC3339))
	}
	for _, sec := range []struct {
		title string
		m     map[string]int
	}{{"by queue", s.Queue}, {"by type", s.Type}, {"by class", s.Class}, {"by status", s.Status}} {
		printCounts(w, sec.title, sec.m)
	}
	return nil
}

func printCounts(w io.Writer, title string, m map[string]int) {
	fmt.Fprintf(w, "\n%s:\n", title)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "  %8d  %s\n", m[k], k)
	}
}

func (d *dlqCmd) export(ctx context.Context) error {
	out := bufio.NewWriterSize(d.a.stdout, 64<<10)
	defer out.Flush()
	enc := json.NewEncoder(out)
	n := 0
	var total int64
	if !d.filtered() {
		total, _ = d.store.Count(ctx)
	}
	prog := newProgress(d.a, d.progress, "dlq export", total, "dead letters")
	err := d.each(ctx, func(dl *worker.DeadLetter) bool {
		n++
		enc.Encode(d.item(dl, true, true))
		prog.update(int64(n), fmt.Sprintf("%d exported", n))
		return true
	})
	prog.finish()
	out.Flush()
	fmt.Fprintf(d.a.stderr, "exported %d dead letter(s)%s\n", n, map[bool]string{true: "", false: " (payloads redacted; --payload includes them)"}[d.payload])
	return err
}

// shardOf is the asynq queue q when it is a shard of a logical queue
// (CIOQ_QUEUE_SHARDS), else "".
func shardOf(q string) string {
	if worker.LogicalQueue(q) == q {
		return ""
	}
	return q
}
