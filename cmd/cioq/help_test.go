package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

// helpPaths is every command and dlq subcommand of cioq.
func helpPaths() [][]string {
	var paths [][]string
	for _, c := range commands() {
		paths = append(paths, []string{c.name})
	}
	for _, s := range dlqSubs() {
		paths = append(paths, []string{"dlq", s.name})
	}
	for _, s := range contractsSubs() {
		paths = append(paths, []string{"contracts", s.name})
	}
	return paths
}

// Every command and subcommand answers -h and --help with exit 0 and, on
// stdout, its usage line with its arguments, its one-line summary and every
// flag it defines.
func TestEveryCommandHelpListsItsFlags(t *testing.T) {
	t.Parallel()
	paths := helpPaths()
	if len(paths) < 16 {
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, path := range paths {
		for _, h := range []string{"-h", "--help"} {
			name := strings.Join(path, " ")
			t.Run(name+" "+h, func(t *testing.T) {
				t.Parallel()
				var stdout, stderr bytes.Buffer
				var sets []*flag.FlagSet
				a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
					getenv: func(string) string { return "" }, flagSets: func(fs *flag.FlagSet) { sets = append(sets, fs) }}
				code := run(context.Background(), a, append(append([]string{}, path...), h))
				out := stdout.String()
				if code != exitOK || stderr.Len() != 0 {
					t.Fatalf("exit %d, stderr %q", code, stderr.String())
				}
				first, _, _ := strings.Cut(out, "\n")
				switch name {
				case "help":
					if !strings.Contains(out, "Commands:") {
						t.Errorf("help:\n%s", out)
					}
					return
				case "contracts":
					if !strings.HasPrefix(first, "Usage: cioq contracts <subcommand>") {
						t.Errorf("usage line %q", first)
					}
					for _, s := range contractsSubs() {
						if !strings.Contains(out, "  "+s.name+" ") || !strings.Contains(out, s.summary) {
							t.Errorf("contracts help does not list %s:\n%s", s.name, out)
						}
					}
				case "dlq":
					if !strings.HasPrefix(first, "Usage: cioq dlq <subcommand>") {
						t.Errorf("usage line %q", first)
					}
					for _, s := range dlqSubs() {
						if !strings.Contains(out, "  "+s.name+" ") || !strings.Contains(out, s.summary) {
							t.Errorf("dlq help does not list %s:\n%s", s.name, out)
						}
					}
				default:
					if !strings.HasPrefix(first, "Usage: cioq "+name) {
						t.Errorf("usage line %q", first)
					}
				}
				sum := summaryOf(name)
				if sum == "" || !strings.Contains(out, strings.ToUpper(sum[:1])+sum[1:]+".") {
					t.Errorf("no one-line summary %q in:\n%s", sum, out)
				}
				if len(sets) > 1 {
					t.Fatalf("%d flag sets", len(sets))
				}
				for _, fs := range sets {
					fs.VisitAll(func(f *flag.Flag) {
						if !strings.Contains(out, "\n  --"+f.Name+" ") && !strings.Contains(out, "\n  --"+f.Name+"\n") {
							t.Errorf("flag --%s not in the help:\n%s", f.Name, out)
						}
						if _, usage := flag.UnquoteUsage(f); !strings.Contains(out, usage) {
							t.Errorf("flag --%s's description not in the help", f.Name)
						}
					})
				}
			})
		}
	}
}

// Asking for help in other ways: `cioq help CMD [SUB]`, `cioq dlq help
// SUB`, and `cioq help -h` (which recursed until the stack overflowed).
func TestHelpCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "dlq", "retry"}, "Usage: cioq dlq retry ID|KEY..."},
		{[]string{"help", "enqueue"}, "Usage: cioq enqueue TYPE"},
		{[]string{"dlq", "help", "show"}, "Usage: cioq dlq show ID|KEY"},
		{[]string{"dlq", "help"}, "Usage: cioq dlq <subcommand>"},
		{[]string{"help", "-h"}, "Commands:"},
		{[]string{"help", "--help"}, "Commands:"},
		{[]string{"--help"}, "Commands:"},
	} {
		var stdout, stderr bytes.Buffer
		a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		if code := run(context.Background(), a, tc.args); code != exitOK || !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("cioq %v: exit %d, stdout:\n%s\nstderr:\n%s", tc.args, code, stdout.String(), stderr.String())
		}
	}
	// A bad flag is a usage error, printed once on stderr with a hint.
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := run(context.Background(), a, []string{"dlq", "retry", "--bogus"}); code != exitUsage || stdout.Len() != 0 ||
		strings.Count(stderr.String(), "-bogus") != 1 || !strings.Contains(stderr.String(), "cioq dlq retry -h") {
		t.Errorf("bad flag: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
