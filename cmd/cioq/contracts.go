package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// contractsSub is one `cioq contracts` subcommand.
type contractsSub struct {
	name, args, summary, details string
	define                       func(c *contractsCmd, fs *flag.FlagSet) func(context.Context) error
}

// contractsCmd holds a contracts subcommand's flags and arguments.
type contractsCmd struct {
	a                    *app
	file, workspace      string
	typ, format, objType string
	dryRun, json         bool
	examples             int
	args                 []string
}

func contractsSubs() []contractsSub {
	return []contractsSub{
		{name: "pull", args: "[--file PATH] [--workspace NAME] [--dry-run]",
			summary: "write the workspace's transactional messages and the variables their Liquid uses into the contracts file",
			details: "Reads the workspace's transactional messages from Customer.io's App API\n" +
				"(GET /v1/transactional, and GET /v1/transactional/{id}/contents for each;\n" +
				"10 requests per second, a 429 waits out its Retry-After), parses the Liquid\n" +
				"of every subject, body and preheader and writes each message's trigger.*\n" +
				"variables (required, or optional when they have a default filter or are only\n" +
				"used in a condition; arrays looped over, items[].price for their elements).\n" +
				"Messages written by hand (no \"source\": \"pulled\"), attribute rules, event\n" +
				"rules and strict_ids are never changed; a pulled message keeps its trigger\n" +
				"and declared types. Prints what changed.\n\n" +
				"Environment: CIOQ_CONTRACTS_FILE (the file, unless --file), CUSTOMERIO_APP_API_KEY,\n" +
				"CUSTOMERIO_REGION, CUSTOMERIO_APP_URL, CIOQ_WORKSPACES_FILE (other workspaces).",
			define: func(c *contractsCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.StringVar(&c.file, "file", "", "contracts file to write (default CIOQ_CONTRACTS_FILE)")
				fs.StringVar(&c.workspace, "workspace", "default", "workspace whose messages to pull (its App API key)")
				fs.BoolVar(&c.dryRun, "dry-run", false, "print the file pull would write instead of writing it")
				return c.pull
			}},
		{name: "check", args: "FILE [--type TYPE] [--workspace NAME] [--format jsonl|csv] [--object-type N] [--json]",
			summary: "lint a JSON-lines or CSV file against the contracts and print a report",
			details: "Checks every line as an enqueue would (decoding, Customer.io's rules, the\n" +
				"contracts) without enqueueing anything, and prints the counts per rule and the\n" +
				"first examples by line number. JSON lines are tasks as `cioq enqueue --file`\n" +
				"reads them ({\"type\":...,\"payload\":{...}}, optionally \"workspace\"), or bare\n" +
				"payloads of --type. A CSV file is people (a column id, email or cio_id) or,\n" +
				"with --object-type, objects (a column object_id); every other column is an\n" +
				"attribute, its cells text (empty: not set), as an import sends them.\n" +
				"Exits 1 when a line is refused.\n\n" +
				"Environment: CIOQ_CONTRACTS_FILE (unless --file).",
			define: func(c *contractsCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.StringVar(&c.file, "file", "", "contracts file (default CIOQ_CONTRACTS_FILE)")
				fs.StringVar(&c.typ, "type", "", "task type of bare JSON payload lines (e.g. cio:identify)")
				fs.StringVar(&c.workspace, "workspace", "", "workspace of lines that name none (default workspace when empty)")
				fs.StringVar(&c.format, "format", "", "jsonl or csv (default: by the file's extension, jsonl otherwise)")
				fs.StringVar(&c.objType, "object-type", "", "CSV rows are objects of this object type id, not people")
				fs.IntVar(&c.examples, "examples", 3, "examples printed per rule")
				fs.BoolVar(&c.json, "json", false, "print the report as JSON")
				return c.check
			}},
		{name: "show", args: "[--file PATH] [--json]",
			summary: "print the contracts in force",
			details: "Prints each workspace's transactional messages with their variables, the\n" +
				"declared attributes and their policies, and the event timestamp policy.\n\n" +
				"Environment: CIOQ_CONTRACTS_FILE (unless --file).",
			define: func(c *contractsCmd, fs *flag.FlagSet) func(context.Context) error {
				fs.StringVar(&c.file, "file", "", "contracts file (default CIOQ_CONTRACTS_FILE)")
				fs.BoolVar(&c.json, "json", false, "print the file as loaded, as JSON")
				return c.show
			}},
	}
}

func contractsOverview() string {
	var b strings.Builder
	sum := summaryOf("contracts")
	b.WriteString("Usage: cioq contracts <subcommand> [flags]\n\n")
	b.WriteString(strings.ToUpper(sum[:1]) + sum[1:] + ".\n\n")
	b.WriteString("The contracts are templates and their message_data variables, attribute\n")
	b.WriteString("types and event timestamps, in the file CIOQ_CONTRACTS_FILE names (see\n")
	b.WriteString("README.md, Contracts).\n\nSubcommands:\n")
	for _, s := range contractsSubs() {
		fmt.Fprintf(&b, "  %-6s %s\n", s.name, s.summary)
	}
	b.WriteString("\nRun `cioq contracts <subcommand> -h` for its flags.\n")
	return b.String()
}

func runContracts(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, contractsOverview())
		return &usageError{err: errors.New("missing subcommand")}
	}
	if args[0] == "help" || isHelpArg(args[0]) {
		if len(args) > 1 && !isHelpArg(args[1]) {
			return runContracts(ctx, a, []string{args[1], "-h"})
		}
		fmt.Fprint(a.stdout, contractsOverview())
		return flag.ErrHelp
	}
	var sub *contractsSub
	for _, s := range contractsSubs() {
		if s.name == args[0] {
			sub = &s
			break
		}
	}
	if sub == nil {
		fmt.Fprint(a.stderr, contractsOverview())
		return usageErrorf("unknown subcommand %q", args[0])
	}
	c := &contractsCmd{a: a}
	fs := newFlagSet(a, "contracts "+sub.name, sub.args, sub.details)
	run := sub.define(c, fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	c.args = fs.Args()
	if sub.name != "check" && len(c.args) > 0 {
		return usageErrorf("unexpected argument %q", c.args[0])
	}
	return run(ctx)
}

// path is the contracts file: --file, else CIOQ_CONTRACTS_FILE.
func (c *contractsCmd) path() (string, error) {
	if c.file != "" {
		return c.file, nil
	}
	if p := strings.TrimSpace(c.a.getenv(config.EnvContractsFile)); p != "" {
		return p, nil
	}
	return "", usageErrorf("no contracts file: give --file or set %s", config.EnvContractsFile)
}

func (c *contractsCmd) load() (*contracts.Set, string, error) {
	p, err := c.path()
	if err != nil {
		return nil, "", err
	}
	set, err := contracts.Load(p)
	if err != nil {
		return nil, "", configError(err)
	}
	return set, p, nil
}

func (c *contractsCmd) pull(ctx context.Context) error {
	p, err := c.path()
	if err != nil {
		return err
	}
	ws := c.workspace
	if err := tasks.ValidateWorkspace(ws); err != nil || ws == "" {
		return usageErrorf("--workspace=%q: not a workspace name", ws)
	}
	all, err := config.LoadWorkspaces(c.a.getenv)
	if err != nil {
		return configError(err)
	}
	key := ws
	if ws == "default" {
		key = config.DefaultWorkspace
	}
	w, ok := all[key]
	if !ok || !w.HasApp() {
		return usageErrorf("workspace %q has no App API key (%s, or app_api_key in %s)", ws, config.EnvAppAPIKey, config.EnvWorkspacesFile)
	}
	client, err := customerio.New(w.ClientConfig())
	if err != nil {
		return configError(err)
	}
	f, err := contracts.ReadFile(p)
	if err != nil {
		return configError(err)
	}
	pulled, err := contracts.Pull(ctx, client, contracts.PullOptions{})
	if err != nil {
		return err
	}
	rep := contracts.Merge(f, ws, pulled)
	b, err := f.Marshal()
	if err != nil {
		return err
	}
	if _, err := contracts.Parse(b); err != nil { // never write a file that does not load
		return fmt.Errorf("the merged file would not load: %w", err)
	}
	out := c.a.stdout
	if c.dryRun {
		_, err := out.Write(b)
		return err
	}
	if err := writeFileAtomic(p, b); err != nil {
		return err
	}
	fmt.Fprintf(out, "Pulled %d transactional message(s) of workspace %q into %s\n", len(pulled), ws, p)
	for _, l := range []struct {
		what  string
		items []string
	}{{"added", rep.Added}, {"updated", rep.Updated}, {"removed (no longer in Customer.io)", rep.Removed}, {"kept as written by hand", rep.KeptByHand}} {
		if len(l.items) > 0 {
			fmt.Fprintf(out, "  %s: %s\n", l.what, strings.Join(l.items, ", "))
		}
	}
	failed := 0
	for _, pm := range pulled {
		if pm.Problem != "" {
			failed++
			fmt.Fprintf(out, "  message %d %q: its variables could not be read (%s)\n", pm.Message.ID, pm.Message.Name, pm.Problem)
			continue
		}
		req, opt := 0, 0
		for _, v := range pm.Message.Variables {
			if v.Optional {
				opt++
			} else {
				req++
			}
		}
		fmt.Fprintf(out, "  message %d %q (%s): %d required, %d optional variable(s)\n", pm.Message.ID, pm.Message.Name, orDash(pm.Message.Channel), req, opt)
	}
	if failed > 0 {
		return silentError(exitFailure)
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file in its
// directory, so a reader never sees half a file.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// lintReport is what `contracts check` found.
type lintReport struct {
	Lines    int                  `json:"lines"`
	OK       int                  `json:"ok"`
	Refused  int                  `json:"refused"`
	Coerced  int                  `json:"coerced"`
	Rules    map[string]int       `json:"rules"`
	Examples map[string][]example `json:"examples"`
}

type example struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (r *lintReport) add(rule string, line int, msg string, max int) {
	r.Rules[rule]++
	if len(r.Examples[rule]) < max {
		r.Examples[rule] = append(r.Examples[rule], example{line, msg})
	}
}

func (c *contractsCmd) check(context.Context) error {
	if len(c.args) != 1 {
		return usageErrorf("want exactly one FILE to check (\"-\" = stdin)")
	}
	set, _, err := c.load()
	if err != nil {
		return err
	}
	if c.workspace != "" {
		if err := tasks.ValidateWorkspace(c.workspace); err != nil {
			return usageErrorf("--workspace=%q: %v", c.workspace, err)
		}
	}
	if c.typ != "" {
		if _, ok := tasks.Lookup(c.typ); !ok {
			return usageErrorf("--type=%q: not a task type (see `cioq enqueue -types`)", c.typ)
		}
	}
	name := c.args[0]
	format := c.format
	if format == "" {
		format = "jsonl"
		if strings.EqualFold(filepath.Ext(name), ".csv") {
			format = "csv"
		}
	}
	if format != "jsonl" && format != "csv" {
		return usageErrorf("--format=%q: want jsonl or csv", format)
	}
	var r io.Reader = c.a.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return usageErrorf("%v", err)
		}
		defer f.Close()
		r = f
	}
	rep := &lintReport{Rules: map[string]int{}, Examples: map[string][]example{}}
	if format == "csv" {
		err = c.lintCSV(set, r, rep)
	} else {
		err = c.lintJSONL(set, r, rep)
	}
	if err != nil {
		return err
	}
	c.printReport(name, rep)
	if rep.Refused > 0 {
		return silentError(exitFailure)
	}
	return nil
}

// lintTask checks one task as an enqueue would, without Redis.
func (c *contractsCmd) lintTask(set *contracts.Set, rep *lintReport, line int, typ, ws string, raw json.RawMessage) {
	rep.Lines++
	resolve := func(env string) string {
		if ws != "" {
			return ws
		}
		return env
	}
	prepared, err := set.PrepareRaw(typ, raw, resolve, false)
	if err != nil {
		c.refused(rep, line, typ, err)
		return
	}
	coerced := 0
	if !bytes.Equal(prepared, raw) { // a timestamp of the wrong JSON kind, rewritten
		coerced++
		rep.add("coerced "+contracts.TypeTimestamp, line, typ+": timestamp: coerced to "+contracts.TypeTimestamp, c.examples)
	}
	raw = prepared
	env, p, err := tasks.DecodeStrict(typ, raw)
	if err != nil {
		rep.Refused++
		msg := err.Error()
		var de *tasks.DecodeError
		if errors.As(err, &de) {
			msg = fmt.Sprintf("%s: invalid field %q: %s", typ, decodeField(de), de.Reason)
		}
		rep.add("invalid", line, msg, c.examples)
		return
	}
	if err := p.Validate(); err != nil {
		rep.Refused++
		rep.add("invalid", line, typ+": "+strings.TrimPrefix(err.Error(), "customerio: "), c.examples)
		return
	}
	if ws == "" {
		ws = env.Workspace
	}
	res, err := set.CheckQuiet(ws, p)
	if err != nil {
		c.refused(rep, line, typ, err)
		return
	}
	for _, co := range res.Coerced {
		coerced++
		rep.add("coerced "+co.Type, line, fmt.Sprintf("%s: %s: %s coerced to %s", typ, co.Field, co.From, co.Type), c.examples)
	}
	if coerced > 0 {
		rep.Coerced++
	}
	rep.OK++
}

func (c *contractsCmd) refused(rep *lintReport, line int, typ string, err error) {
	rep.Refused++
	var ce *contracts.Error
	if !errors.As(err, &ce) {
		rep.add("invalid", line, typ+": "+err.Error(), c.examples)
		return
	}
	for _, v := range ce.Violations {
		rep.add(v.Rule, line, fmt.Sprintf("%s: %s: %s", typ, v.Field, v.Reason), c.examples)
	}
}

func (c *contractsCmd) lintJSONL(set *contracts.Set, r io.Reader, rep *lintReport) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var l struct {
			Type      string          `json:"type"`
			Payload   json.RawMessage `json:"payload"`
			Workspace string          `json:"workspace"`
		}
		isTask := json.Unmarshal(b, &l) == nil && l.Type != "" && len(l.Payload) > 0
		typ, raw, ws := l.Type, json.RawMessage(l.Payload), l.Workspace
		if !isTask {
			if c.typ == "" {
				rep.Lines++
				rep.Refused++
				rep.add("invalid", n, `not a task ({"type":...,"payload":{...}}): give --type for bare payloads`, c.examples)
				continue
			}
			typ, raw, ws = c.typ, json.RawMessage(append([]byte(nil), b...)), ""
		}
		if _, ok := tasks.Lookup(typ); !ok {
			rep.Lines++
			rep.Refused++
			rep.add("invalid", n, fmt.Sprintf("%q is not a task type", typ), c.examples)
			continue
		}
		if ws == "" {
			ws = c.workspace
		}
		c.lintTask(set, rep, n, typ, ws, raw)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

func (c *contractsCmd) lintCSV(set *contracts.Set, r io.Reader, rep *lintReport) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return usageErrorf("the CSV file has no header row: %v", err)
	}
	idCol, idName := -1, ""
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case c.objType != "" && h == "object_id":
			idCol, idName = i, h
		case c.objType == "" && (h == "id" || h == "email" || h == "cio_id") && idCol < 0:
			idCol, idName = i, h
		}
	}
	if idCol < 0 {
		if c.objType != "" {
			return usageErrorf("the CSV header has no object_id column")
		}
		return usageErrorf("the CSV header has no id, email or cio_id column (give --object-type for objects)")
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return usageErrorf("CSV line %d: %v", line, err)
		}
		attrs := map[string]any{}
		id := ""
		for i, v := range rec {
			if i >= len(header) {
				break
			}
			switch {
			case i == idCol:
				id = v
			case v != "" && header[i] != "":
				attrs[header[i]] = v
			}
		}
		var p tasks.Payload
		if c.objType != "" {
			p = tasks.ObjectUpsert{ObjectTypeID: c.objType, ObjectID: id, Attributes: attrs}
		} else {
			ids := customerio.Identifiers{}
			switch idName {
			case "id":
				ids.ID = id
			case "email":
				ids.Email = id
			default:
				ids.CioID = id
			}
			p = tasks.Identify{Identifiers: ids, Attributes: attrs}
		}
		raw, err := json.Marshal(p)
		if err != nil {
			return err
		}
		c.lintTask(set, rep, line, p.TaskType(), c.workspace, raw)
	}
}

func (c *contractsCmd) printReport(name string, rep *lintReport) {
	out := c.a.stdout
	if c.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	fmt.Fprintf(out, "%s: %d line(s): %d accepted (%d with coerced values), %d refused\n", name, rep.Lines, rep.OK, rep.Coerced, rep.Refused)
	rules := make([]string, 0, len(rep.Rules))
	for r := range rep.Rules {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	for _, r := range rules {
		fmt.Fprintf(out, "  %-22s %d\n", r, rep.Rules[r])
		for _, e := range rep.Examples[r] {
			fmt.Fprintf(out, "      line %d: %s\n", e.Line, e.Message)
		}
	}
}

func (c *contractsCmd) show(context.Context) error {
	set, p, err := c.load()
	if err != nil {
		return err
	}
	f := set.File()
	out := c.a.stdout
	if c.json {
		b, err := f.Marshal()
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	fmt.Fprintf(out, "Contracts in force (%s):\n", p)
	names := make([]string, 0, len(f.Workspaces))
	for n := range f.Workspaces {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := f.Workspaces[n]
		fmt.Fprintf(out, "\nworkspace %s\n", n)
		if t := w.Transactional; t != nil {
			strict := "off: a send naming another id is not checked"
			if t.StrictIDs {
				strict = "on: a send naming another id is refused"
			}
			fmt.Fprintf(out, "  transactional messages (strict_ids %s):\n", strict)
			for _, m := range t.Messages {
				src := "by hand"
				if m.Source == contracts.SourcePulled {
					src = "pulled"
				}
				id := "-"
				if m.ID != 0 {
					id = fmt.Sprint(m.ID)
				}
				fmt.Fprintf(out, "    %s %q, channel %s, %s\n", id, lookupName(m), orDash(m.Channel), src)
				paths := make([]string, 0, len(m.Variables))
				for path := range m.Variables {
					paths = append(paths, path)
				}
				sort.Strings(paths)
				for _, path := range paths {
					v := m.Variables[path]
					req := "required"
					if v.Optional {
						req = "optional"
					}
					typ := v.Type
					if typ == "" {
						typ = contracts.TypeAny
					}
					note := ""
					if v.Note != "" {
						note = "  (" + v.Note + ")"
					}
					fmt.Fprintf(out, "        %-28s %-8s %s%s\n", path, req, typ, note)
				}
			}
		}
		if a := w.Attributes; a != nil {
			def := a.Policy
			if def == "" {
				def = contracts.Refuse
			}
			if a.People != nil {
				showRules(out, "people attributes", a.People, def)
			}
			types := make([]string, 0, len(a.Objects))
			for t := range a.Objects {
				types = append(types, t)
			}
			sort.Strings(types)
			for _, t := range types {
				showRules(out, "object type "+t+" attributes", a.Objects[t], def)
			}
		}
		ts := "not checked"
		if w.Events != nil && w.Events.TimestampPolicy != "" {
			ts = string(w.Events.TimestampPolicy)
		}
		fmt.Fprintf(out, "  event timestamps: %s\n", ts)
	}
	return nil
}

func lookupName(m *contracts.Message) string {
	if m.Trigger != "" {
		return m.Trigger
	}
	return m.Name
}

func showRules(out io.Writer, what string, r *contracts.AttributeRules, def contracts.Policy) {
	if r.Policy != "" {
		def = r.Policy
	}
	fmt.Fprintf(out, "  %s (policy %s):\n", what, def)
	names := make([]string, 0, len(r.Attributes))
	for n := range r.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := r.Attributes[n]
		p := a.Policy
		if p == "" {
			p = def
		}
		fmt.Fprintf(out, "    %-28s %-9s %s\n", n, a.Type, p)
	}
}
