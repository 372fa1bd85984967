package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/cmd/cioq/internal/importer"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// importMemoryLimit is cioq import's soft memory limit (the Go runtime's).
const importMemoryLimit = 40 << 20

func runImport(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "import", "FILE [flags]",
		"Imports a CSV or JSON lines file (a backfill of people, events or objects)\n"+
			"into the queue, streaming: memory does not grow with the file. Operations go\n"+
			"in cio:batch tasks of --batch-size (one Track v2 request each). A CSV file has\n"+
			"a header row; --map (or --map-file) maps its columns, entries\n"+
			"TARGET=COLUMN[:KIND] separated by commas: TARGET is id, email, cio_id, name,\n"+
			"timestamp, event_id, event_type, object_type_id, object_id or attr.<name>;\n"+
			"KIND is string (default), int, float, bool, timestamp (unix seconds, RFC 3339\n"+
			"or YYYY-MM-DD) or json. Without a mapping, the id, email and cio_id columns\n"+
			"name the person and every other column is a string attribute. A JSON lines\n"+
			"file holds one payload of --type per line, or {\"type\":...,\"payload\":{...}}.\n"+
			"A row that makes no valid operation goes to the rejects file (line, reason,\n"+
			"row) and the import goes on (--strict: checks every row first and enqueues\n"+
			"nothing if one is rejected). A checkpoint (FILE.checkpoint) records where it\n"+
			"got to after every batch: --resume goes on from it without duplicates (each\n"+
			"batch is enqueued under an idempotency key; events get ids derived from the\n"+
			"file and line). Progress: a bar on a terminal, else a line on stderr every\n"+
			"--progress-every; then a summary on stdout.\n\n"+
			"Environment: REDIS_URL, CIOQ_KEY_SECRET, CIOQ_WORKSPACES_FILE, CIOQ_CONTRACTS_FILE,\n"+
			"CIOQ_QUEUE_SHARDS.")
	typ := fs.String("type", "", "operation type: identify (CSV default), track, object_upsert, or any batchable cio:* type for JSON lines (default there: each line names its own)")
	format := fs.String("format", "", "csv or jsonl (default: csv for a .csv file, else jsonl)")
	mapSpec := fs.String("map", "", "CSV column mapping, e.g. id=user_id,attr.plan=plan,attr.seats=seats:int")
	mapFile := fs.String("map-file", "", "file holding the CSV column mapping (one or more entries per line, # comments)")
	workspace := fs.String("workspace", "", "Customer.io workspace that delivers the operations (default workspace when empty)")
	batchSize := fs.Int("batch-size", tasks.DefaultBatchOperations, "operations per cio:batch task (1-1000)")
	rejects := fs.String("rejects", "", "rejects file, JSON lines (default FILE.rejects.jsonl)")
	checkpoint := fs.String("checkpoint", "", "checkpoint file (default FILE.checkpoint)")
	resume := fs.Bool("resume", false, "go on from the checkpoint of an interrupted import")
	strict := fs.Bool("strict", false, "check every row first; enqueue nothing if one is rejected")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	pf := addProgressFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want exactly one FILE (\"-\" = stdin)")
	}
	path := fs.Arg(0)
	// Memory stays bounded whatever the file's size: a batch at a time is
	// held; a soft limit keeps the garbage collector from letting the
	// heap grow past it meanwhile.
	debug.SetMemoryLimit(importMemoryLimit)
	if *mapSpec != "" && *mapFile != "" {
		return usageErrorf("give --map or --map-file, not both")
	}
	if *batchSize < 1 || *batchSize > tasks.MaxBatchOperations {
		return usageErrorf("--batch-size=%d: want 1 to %d", *batchSize, tasks.MaxBatchOperations)
	}
	t := *typ
	if t != "" && !strings.Contains(t, ":") {
		t = "cio:" + t
	}
	if t != "" && !tasks.Batchable(t) {
		return usageErrorf("--type=%s: want a batchable type (identify, track, object_upsert, ...)", *typ)
	}
	spec := *mapSpec
	if *mapFile != "" {
		b, err := os.ReadFile(*mapFile)
		if err != nil {
			return usageErrorf("--map-file: %v", err)
		}
		spec = string(b)
	}
	m, err := importer.ParseMapping(spec)
	if err != nil {
		return usageErrorf("--map: %v", err)
	}
	if err := tasks.ValidateWorkspace(*workspace); err != nil {
		return usageErrorf("--workspace: must be 1 to 64 characters of a-z, 0-9, '_' and '-'")
	}
	known, err := knownWorkspaces(a.getenv)
	if err != nil {
		return err
	}
	if err := known.check("", *workspace); err != nil {
		return usageErrorf("--workspace: %v", err)
	}
	_, rurl, popts, err := redisEnv(a)
	if err != nil {
		return err
	}
	if known != nil {
		popts = append(popts, producer.Workspaces(known.names...))
	}
	// With a contracts file, a row a contract refuses is a reject (named in
	// the rejects file), and coerced values are imported coerced.
	set, err := config.LoadContracts(a.getenv)
	if err != nil {
		return configError(err)
	}
	if set != nil {
		popts = append(popts, producer.WithContracts(set))
	}
	c, err := producer.New(rurl, popts...)
	if err != nil {
		return configError(err)
	}
	defer c.Close()

	var size int64
	if path != "-" {
		st, err := os.Stat(path)
		if err != nil {
			return usageErrorf("%v", err)
		}
		size = st.Size()
	}
	prog := newProgress(a, pf, "import", size, "bytes")
	opts := importer.Options{
		Path: path, In: a.stdin, Format: *format, Type: t, Mapping: m, MappingSpec: spec, BatchSize: *batchSize,
		Workspace: *workspace, RejectsPath: *rejects, CheckpointPath: *checkpoint, Resume: *resume, Strict: *strict,
		Progress: func(p importer.Progress) {
			done := p.Offset
			if size == 0 {
				done = p.Rows
			}
			prog.update(done, fmt.Sprintf("%d rows read, %d enqueued, %d rejected", p.Rows, p.Enqueued, p.Rejected))
		},
	}
	if *workspace != "" {
		opts.EnqueueOptions = []producer.EnqueueOption{producer.Workspace(*workspace)}
	}
	if set != nil {
		opts.Check = func(p tasks.Payload) error { return c.CheckPayload(p, opts.EnqueueOptions...) }
	}
	sum, err := importer.Run(ctx, c, opts)
	prog.finish()
	var ce *importer.CheckpointExistsError
	if errors.As(err, &ce) {
		return usageErrorf("%v", err)
	}
	if sum.Done {
		fmt.Fprintf(a.stderr, "cioq import: the checkpoint says this import finished already; nothing to do\n")
	}
	printImportSummary(a, sum, *asJSON)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("interrupted after line %d; the rows read were enqueued: run again with --resume to go on", sum.Line)
	}
	var re *importer.RejectedError
	if errors.As(err, &re) {
		return err
	}
	if path != "-" && sum.Rows > 0 {
		return fmt.Errorf("%w (the checkpoint holds the progress: run again with --resume)", err)
	}
	return err
}

// printImportSummary prints the summary on stdout.
func printImportSummary(a *app, s importer.Summary, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(a.stdout).Encode(map[string]any{
			"rows": s.Rows, "enqueued": s.Enqueued, "rejected": s.Rejected, "duplicates": s.Duplicates,
			"tasks": s.Tasks, "resumed": s.Resumed, "rejects": s.RejectsPath, "elapsed_ms": s.Elapsed.Milliseconds(),
		})
		return
	}
	line := fmt.Sprintf("rows read %d, enqueued %d (%d tasks), rejected %d, duplicates %d", s.Rows, s.Enqueued, s.Tasks, s.Rejected, s.Duplicates)
	if s.Resumed {
		line += " (resumed: counts include the earlier runs)"
	}
	line += fmt.Sprintf(", in %s", s.Elapsed.Round(time.Millisecond))
	if s.RejectsPath != "" {
		line += "; rejects in " + s.RejectsPath
	}
	fmt.Fprintln(a.stdout, line)
}
