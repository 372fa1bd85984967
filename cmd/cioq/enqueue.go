package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// maxLineBytes bounds one JSON line of `enqueue --file` (and the stdin payload).
const maxLineBytes = 4 << 20

// receipt is the JSON line printed for each enqueued task.
type receipt struct {
	TaskID    string `json:"task_id"`
	Queue     string `json:"queue"`
	Type      string `json:"type"`
	Duplicate bool   `json:"duplicate"`
}

// fileLine is one line of `enqueue --file`.
type fileLine struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	Key     string          `json:"key,omitempty"`
}

// enqueueFlags are enqueue's flags and its TYPE argument.
type enqueueFlags struct {
	typ, key, queue, workspace, in, expiresIn, file string
	workspaceGiven, expiresInGiven, listTypes       bool
	progress                                        *progressFlags
}

func parseEnqueueFlags(a *app, args []string) (enqueueFlags, error) {
	fs := newFlagSet(a, "enqueue", "TYPE [flags] < payload.json\n       cioq enqueue --file tasks.jsonl [flags]",
		"Enqueues one task: TYPE (e.g. cio:send_email, see `cioq enqueue -types`) and its\n"+
			"JSON payload on stdin. With --file, enqueues every line of a JSON lines file\n"+
			"({\"type\":...,\"payload\":{...},\"key\":\"...\"}; key optional; \"-\" = stdin);\n"+
			"all lines are validated first and nothing is enqueued if one is invalid\n"+
			"(the file is streamed: any size; progress on stderr, a bar on a terminal).\n"+
			"Prints one JSON receipt per task: task_id, queue, type, duplicate (with a\n"+
			"key, task_id is a keyed hash of it, never the key).\n"+
			"Invalid input exits 1 with a message naming the field (and the line).\n"+
			"With CIOQ_WORKSPACES_FILE (the workers' file), a task naming a workspace\n"+
			"that is not in it is refused. With CIOQ_CONTRACTS_FILE, every task is checked\n"+
			"against the contracts (a send missing a template's variable, an attribute of\n"+
			"the wrong type: refused, naming the field, or coerced by policy).\n"+
			"With CIOQ_REDIS_ACK_REPLICAS=N, a task is acknowledged once N replicas have\n"+
			"it; one fewer confirmed in time exits 1 saying the task may exist (retrying\n"+
			"with --key is safe).\n\n"+
			"Environment: REDIS_URL, CIOQ_KEY_SECRET, CIOQ_WORKSPACES_FILE, CIOQ_CONTRACTS_FILE,\n"+
			"CIOQ_REDIS_ACK_REPLICAS, CIOQ_REDIS_ACK_TIMEOUT, CIOQ_QUEUE_SHARDS.")
	var f enqueueFlags
	fs.StringVar(&f.key, "key", "", "idempotency key: enqueueing it again enqueues nothing (duplicate: true)")
	fs.StringVar(&f.queue, "queue", "", "queue instead of the type's default (critical, default or bulk)")
	fs.StringVar(&f.workspace, "workspace", "", "Customer.io workspace that delivers the task (default workspace when empty)")
	fs.StringVar(&f.in, "in", "", "deliver no earlier than this `duration` from now (e.g. 10m, 1h30m, or seconds: 600)")
	fs.StringVar(&f.expiresIn, "expires-in", "", "stale after this `duration` from now: dead-lettered as expired instead of sent late (e.g. 1h)")
	fs.StringVar(&f.file, "file", "", "JSON lines file of tasks (\"-\" = stdin)")
	fs.BoolVar(&f.listTypes, "types", false, "list the task types and exit")
	f.progress = addProgressFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return f, err
	}
	if f.listTypes {
		return f, nil
	}
	switch {
	case f.file != "" && fs.NArg() > 0:
		return f, usageErrorf("give TYPE or --file, not both")
	case f.file == "" && fs.NArg() != 1:
		return f, usageErrorf("want exactly one TYPE (or --file); see `cioq enqueue -types`")
	case f.file != "" && f.key != "":
		return f, usageErrorf("--key applies to one task; with --file give each line its \"key\"")
	case f.file == "":
		f.typ = fs.Arg(0)
	}
	f.workspaceGiven, f.expiresInGiven = flagSet(fs, "workspace"), flagSet(fs, "expires-in")
	return f, nil
}

// options are the enqueue options the flags give every task.
func (f enqueueFlags) options() ([]producer.EnqueueOption, error) {
	if f.expiresInGiven && f.expiresIn == "" {
		return nil, usageErrorf("--expires-in: give a duration, e.g. 1h")
	}
	// The rules of /v1/tasks's process_in and expires_in: one parser.
	opts, err := producer.Timing{ProcessIn: f.in, ExpiresIn: f.expiresIn}.Options(time.Now())
	if err != nil {
		var ve *producer.ValidationError
		if errors.As(err, &ve) && ve.Field == "expires_in" {
			return nil, usageErrorf("--expires-in=%s: %s", f.expiresIn, ve.Reason)
		}
		if errors.As(err, &ve) {
			return nil, usageErrorf("--in=%s: %s", f.in, ve.Reason)
		}
		return nil, err
	}
	if f.queue != "" {
		opts = append(opts, producer.Queue(f.queue))
	}
	if f.workspaceGiven {
		opts = append(opts, producer.Workspace(f.workspace))
	}
	return opts, nil
}

func runEnqueue(ctx context.Context, a *app, args []string) error {
	f, err := parseEnqueueFlags(a, args)
	if err != nil {
		return err
	}
	if f.listTypes {
		for _, s := range tasks.Types() {
			fmt.Fprintf(a.stdout, "%-22s queue %s\n", s.Type, s.Defaults.Queue)
		}
		return nil
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	known, err := knownWorkspaces(a.getenv)
	if err != nil {
		return err
	}
	set, err := config.LoadContracts(a.getenv)
	if err != nil {
		return configError(err)
	}
	// Read and validate all input before connecting: the payload on stdin,
	// or every line of --file, streamed (a file of any size; stdin is
	// spooled to a temporary file for the second pass).
	var lines []fileLine
	var lineNos []int
	var tf *taskFile
	if f.file != "" {
		if tf, err = openTaskFile(a, f.file); err != nil {
			return err
		}
		defer tf.close()
		if err := tf.each(func(n int, l fileLine) error {
			if err := precheck(l, f.queue, f.workspace, f.workspaceGiven, known, set); err != nil {
				return lineError(n, err)
			}
			return nil
		}); err != nil {
			return err
		}
	} else {
		if lines, lineNos, err = readEnqueueInput(a, f); err != nil {
			return err
		}
		if err := precheck(lines[0], f.queue, f.workspace, f.workspaceGiven, known, set); err != nil {
			return lineError(lineNos[0], err)
		}
	}

	_, rurl, popts, err := redisEnv(a)
	if err != nil {
		return err
	}
	if known != nil {
		popts = append(popts, producer.Workspaces(known.names...))
	}
	if set != nil {
		popts = append(popts, producer.WithContracts(set))
	}
	c, err := producer.New(rurl, popts...)
	if err != nil {
		return configError(err)
	}
	defer c.Close()
	if tf != nil {
		return enqueueFile(ctx, a, c, tf, opts, f.progress)
	}
	return enqueueLines(ctx, a, c, lines, lineNos, opts)
}

// enqueueFile enqueues the checked lines of tf in order, printing a
// receipt for each, with progress on stderr; the first failure stops it,
// saying how many were enqueued before.
func enqueueFile(ctx context.Context, a *app, c *producer.Client, tf *taskFile, opts []producer.EnqueueOption, pf *progressFlags) error {
	out := bufio.NewWriter(a.stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	prog := newProgress(a, pf, "enqueue", tf.size, "bytes")
	done := 0
	err := tf.each(func(n int, l fileLine) error {
		o := opts
		if l.Key != "" {
			o = append(o[:len(o):len(o)], producer.IdempotencyKey(l.Key))
		}
		r, err := c.EnqueueRaw(ctx, l.Type, l.Payload, o...)
		if err != nil {
			out.Flush()
			prog.finish()
			if done > 0 {
				fmt.Fprintf(a.stderr, "cioq enqueue: %d task(s) before this one were enqueued (receipts above)\n", done)
			}
			return lineError(n, err)
		}
		done++
		enc.Encode(receipt{TaskID: r.TaskID, Queue: r.Queue, Type: r.Type, Duplicate: r.Duplicate})
		prog.update(tf.offset(), fmt.Sprintf("%d tasks enqueued", done))
		return nil
	})
	if err != nil {
		return err
	}
	prog.finish()
	return nil
}

// readEnqueueInput reads the tasks: the one payload on stdin, or the lines
// of --file. lineNos are the lines' 1-based numbers (0 for stdin).
func readEnqueueInput(a *app, f enqueueFlags) ([]fileLine, []int, error) {
	b, err := io.ReadAll(io.LimitReader(a.stdin, maxLineBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read stdin: %w", err)
	}
	if len(b) > maxLineBytes {
		return nil, nil, lineError(0, invalidInput(f.typ, "payload", "is larger than 4 MiB"))
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil, lineError(0, invalidInput(f.typ, "payload", "is empty: give the JSON payload on stdin"))
	}
	return []fileLine{{Type: f.typ, Payload: b, Key: f.key}}, []int{0}, nil
}

// enqueueLines enqueues the checked tasks in order, printing a receipt for
// each; the first failure stops it, saying how many were enqueued before.
func enqueueLines(ctx context.Context, a *app, c *producer.Client, lines []fileLine, lineNos []int, opts []producer.EnqueueOption) error {
	out := bufio.NewWriter(a.stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for i, l := range lines {
		o := opts
		if l.Key != "" {
			o = append(o[:len(o):len(o)], producer.IdempotencyKey(l.Key))
		}
		r, err := c.EnqueueRaw(ctx, l.Type, l.Payload, o...)
		if err != nil {
			out.Flush()
			if i > 0 {
				fmt.Fprintf(a.stderr, "cioq enqueue: %d task(s) before this one were enqueued (receipts above)\n", i)
			}
			if errors.Is(err, producer.ErrNotReplicated) {
				fmt.Fprintln(a.stderr, "cioq enqueue: this task may exist (Redis's master has it, too few replicas confirmed it); enqueueing it again under the same key is safe, without a key it may be delivered twice")
			}
			return lineError(lineNos[i], err)
		}
		enc.Encode(receipt{TaskID: r.TaskID, Queue: r.Queue, Type: r.Type, Duplicate: r.Duplicate})
	}
	return nil
}

// taskFile is the JSON lines of --file, read line by line (each pass
// holds one line in memory). Blank lines and lines starting with # are
// skipped; line numbers are 1-based.
type taskFile struct {
	f     *os.File
	spool bool // f is a temporary copy of stdin
	size  int64
	read  int64 // bytes consumed by the current pass
	first io.Reader
}

// openTaskFile opens --file; "-" is stdin, copied to a temporary file as
// the first pass reads it, so the second can read it again.
func openTaskFile(a *app, path string) (*taskFile, error) {
	if path == "-" {
		tmp, err := os.CreateTemp("", "cioq-enqueue-*.jsonl")
		if err != nil {
			return nil, fmt.Errorf("spool stdin: %w", err)
		}
		os.Remove(tmp.Name()) // gone once closed
		return &taskFile{f: tmp, spool: true, first: io.TeeReader(a.stdin, tmp)}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("--file: %v", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, usageErrorf("--file: %v", err)
	}
	return &taskFile{f: f, size: st.Size()}, nil
}

func (tf *taskFile) close() { tf.f.Close() }

func (tf *taskFile) offset() int64 { return tf.read }

// each reads the file from its start and calls fn with every task line.
// The first pass over stdin reads stdin (and spools it); later passes read
// the spooled copy.
func (tf *taskFile) each(fn func(n int, l fileLine) error) error {
	var r io.Reader
	if tf.first != nil {
		r, tf.first = tf.first, nil
	} else {
		if _, err := tf.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("read --file: %w", err)
		}
		r = tf.f
	}
	tf.read = 0
	br := bufio.NewReaderSize(r, 64<<10)
	n, tasksSeen := 0, 0
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		tf.read += int64(len(b))
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(b) > maxLineBytes {
				return lineError(n+1, invalidInput("", "line", "is longer than 4 MiB"))
			}
			long = append(long, b...)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read --file: %w", err)
		}
		if long != nil {
			b = append(long, b...)
			long = nil
		}
		if len(b) == 0 && err != nil {
			break
		}
		n++
		if len(b) > maxLineBytes {
			return lineError(n, invalidInput("", "line", "is longer than 4 MiB"))
		}
		if l, ok, lerr := parseTaskLine(n, b); lerr != nil {
			return lerr
		} else if ok {
			tasksSeen++
			if ferr := fn(n, l); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			break
		}
	}
	if tf.spool && tf.size == 0 {
		tf.size = tf.read
	}
	if tasksSeen == 0 {
		return lineError(0, invalidInput("", "file", "has no tasks"))
	}
	return nil
}

// parseTaskLine reads line n of --file; ok false for a blank or comment
// line.
func parseTaskLine(n int, line []byte) (fileLine, bool, error) {
	b := bytes.TrimSpace(line)
	if len(b) == 0 || b[0] == '#' {
		return fileLine{}, false, nil
	}
	// The payload's strings are checked with the payload (precheck,
	// naming fields as in the payload); the line's own here, before
	// encoding/json replaces what is not UTF-8.
	var ve *customerio.ValidationError
	if err := tasks.CheckUTF8(b); errors.As(err, &ve) && ve.Field != "payload" && !strings.HasPrefix(ve.Field, "payload.") {
		field := ve.Field
		if field == "" {
			field = "line"
		}
		return fileLine{}, false, lineError(n, invalidInput("", field, ve.Reason))
	}
	var l fileLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			field, reason := tasks.DescribeJSONError(b, err, &l)
			if field == "" {
				field = "line"
			}
			return fileLine{}, false, lineError(n, invalidInput("", field, reason))
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return fileLine{}, false, lineError(n, invalidInput("", strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a known field (want type, payload, key)"))
		}
		return fileLine{}, false, lineError(n, invalidInput("", "line", "is not a JSON object"))
	}
	// The line's bytes are the reader's until the next read.
	l.Payload = bytes.Clone(l.Payload)
	return l, true, nil
}

// workspaceList is the workspaces of CIOQ_WORKSPACES_FILE.
type workspaceList struct {
	path  string
	names []string // "" is the default workspace
	set   map[string]bool
}

// knownWorkspaces reads the names of CIOQ_WORKSPACES_FILE (nil when unset:
// then any well-formed workspace is accepted). A bad file is a
// configuration error.
func knownWorkspaces(getenv func(string) string) (*workspaceList, error) {
	names, ok, err := config.WorkspaceNames(getenv)
	if err != nil {
		return nil, configError(err)
	}
	if !ok {
		return nil, nil
	}
	l := &workspaceList{path: strings.TrimSpace(getenv(config.EnvWorkspacesFile)), names: names, set: map[string]bool{}}
	for _, n := range names {
		l.set[n] = true
	}
	return l, nil
}

// check refuses a workspace the file does not name ("" and "default" are
// the default workspace).
func (l *workspaceList) check(typ, ws string) error {
	if l == nil || l.set[ws] || ws == "default" {
		return nil
	}
	shown := make([]string, len(l.names))
	for i, n := range l.names {
		shown[i] = workspaceLabel(n)
	}
	return invalidInput(typ, "workspace", fmt.Sprintf("%q is not a workspace of %s %s (it has: %s)", ws, config.EnvWorkspacesFile, l.path, strings.Join(shown, ", ")))
}

// precheck validates a task without Redis: its type, payload, key and the
// queue and workspace options (the --workspace flag when given, else the
// envelope's), with the rules EnqueueRaw applies, the workspace against
// the workspaces file when there is one, and the contracts when there are.
func precheck(l fileLine, queue, workspace string, workspaceGiven bool, known *workspaceList, set *contracts.Set) error {
	if l.Type == "" {
		return invalidInput("", "type", "is required")
	}
	if _, ok := tasks.Lookup(l.Type); !ok {
		return invalidInput(l.Type, "type", "is not a known task type (see `cioq enqueue -types`)")
	}
	if len(bytes.TrimSpace(l.Payload)) == 0 || string(bytes.TrimSpace(l.Payload)) == "null" {
		return invalidInput(l.Type, "payload", "is required")
	}
	payload := l.Payload
	if set != nil {
		var err error
		payload, err = set.PrepareRaw(l.Type, payload, func(env string) string {
			if workspaceGiven {
				return workspace
			}
			return env
		}, false)
		if err != nil {
			return fmt.Errorf("%s: %w", l.Type, err)
		}
	}
	env, p, err := tasks.DecodeStrict(l.Type, payload)
	if err != nil {
		var de *tasks.DecodeError
		if errors.As(err, &de) {
			return invalidInput(l.Type, decodeField(de), de.Reason)
		}
		return fmt.Errorf("%s: %w", l.Type, err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%s: %w", l.Type, err)
	}
	if l.Key != "" {
		if len(l.Key) > 200 {
			return invalidInput(l.Type, "key", "must be at most 200 characters")
		}
		for i := 0; i < len(l.Key); i++ {
			if l.Key[i] <= ' ' || l.Key[i] >= 0x7f {
				return invalidInput(l.Type, "key", "must be printable ASCII without spaces")
			}
		}
	}
	ws := env.Workspace
	if workspaceGiven {
		ws = workspace
	}
	if ws != "" {
		if err := tasks.ValidateWorkspace(ws); err != nil {
			return err
		}
	}
	if err := known.check(l.Type, ws); err != nil {
		return err
	}
	if _, err := set.CheckQuiet(ws, p); err != nil {
		return fmt.Errorf("%s: %w", l.Type, err)
	}
	_ = queue // checked by EnqueueRaw; a bad --queue fails on the first task, before anything is enqueued
	return nil
}

// decodeField is the field a decode error names: its JSON path in the
// payload, or the payload itself when it names none.
func decodeField(de *tasks.DecodeError) string {
	if de.Field == "" {
		return "payload"
	}
	return de.Field
}

// invalidInput is a validation error of the CLI's input.
func invalidInput(typ, field, reason string) error {
	err := error(&customerio.ValidationError{Field: field, Reason: reason})
	if typ != "" {
		err = fmt.Errorf("%s: %w", typ, err)
	}
	return err
}

// lineError prefixes err with the line number (0 = not from a file) and
// names the field when err is a validation error.
func lineError(n int, err error) error {
	var ue *usageError
	if errors.As(err, &ue) {
		return err
	}
	msg := err.Error()
	var ve *customerio.ValidationError
	if errors.As(err, &ve) {
		tail := ve.Error()
		var ce *contracts.Error // a contract's refusal unwraps to its first field's
		if errors.As(err, &ce) {
			tail = ce.Error()
		}
		prefix := strings.TrimSuffix(strings.TrimSuffix(msg, tail), ": ")
		prefix = strings.TrimPrefix(prefix, "producer: ")
		msg = fmt.Sprintf("invalid field %q: %s", ve.Field, ve.Reason)
		if prefix != "" {
			msg = prefix + ": " + msg
		}
	}
	if n > 0 {
		msg = fmt.Sprintf("line %d: %s", n, msg)
	}
	return &inputError{msg: msg}
}

// inputError is invalid input: exit 1 with the message.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }
