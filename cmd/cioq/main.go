// Command cioq is cioq's single binary: the worker that delivers tasks to
// Customer.io, the HTTP server with the dashboard and metrics, the
// Customer.io sandbox, the enqueue and dead-letter CLIs, and the demo.
//
// Run `cioq help` for the subcommands and `cioq <command> -h` for the flags
// of one. Configuration comes from the environment (see README.md); flags
// override it. Exit codes: 0 success, 1 failure, 2 usage or configuration
// error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// app is what every subcommand gets: its streams and the environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// flagSets, when set (tests), is given every flag set a command
	// creates (its flags are defined once the command has returned).
	flagSets func(*flag.FlagSet)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []command {
	return []command{
		{"worker", "deliver queued tasks to Customer.io (admin port: /metrics, /healthz, /readyz)", runWorker},
		{"serve", "HTTP server: ingest front door, /dashboard, /metrics, /healthz, /readyz", runServe},
		{"sandbox", "serve the in-process Customer.io stand-in and print its URLs and keys", runSandbox},
		{"relay", "relay the transactional outbox table (CIOQ_OUTBOX_URL) into Redis", runRelay},
		{"outbox", "create the outbox table in the application's database: cioq outbox migrate", runOutbox},
		{"enqueue", "enqueue one task (JSON on stdin) or a file of JSON lines", runEnqueue},
		{"import", "import a CSV or JSON lines file (a backfill) in multi-operation tasks, resumable", runImport},
		{"dlq", "inspect, retry, delete, purge and export the dead letter store", runDLQ},
		{"status", "a task's timeline: attempts, acceptance, what Customer.io reported (delivered, bounced, ...)", runStatus},
		{"contracts", "pull, check and show the contracts tasks are checked against before Customer.io sees them", runContracts},
		{"doctor", "check Redis and the Customer.io credentials for what would lose acknowledged work", runDoctor},
		{"demo", "sandbox + worker + dashboard + the demo scenarios (what `make run` runs)", runDemo},
		{"bench", "measure cioq against raw asynq with the sandbox (flushes REDIS_URL's database)", runBench},
		{"version", "print the version", runVersion},
		{"help", "print this help, or a command's: cioq help COMMAND [SUBCOMMAND]", nil},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches to the subcommand and maps its error to an exit code.
func run(ctx context.Context, a *app, args []string) int {
	if len(args) == 0 {
		usage(a.stderr)
		return exitUsage
	}
	name := args[0]
	if name == "help" || isHelpArg(name) {
		if len(args) > 1 && !isHelpArg(args[1]) {
			// `cioq help CMD [SUB]` is `cioq CMD [SUB] -h`.
			return run(ctx, a, append(append([]string{}, args[1:]...), "-h"))
		}
		usage(a.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != name || c.run == nil {
			continue
		}
		err := c.run(ctx, a, args[1:])
		return exitCode(a, name, err)
	}
	fmt.Fprintf(a.stderr, "cioq: unknown command %q\n\n", name)
	usage(a.stderr)
	return exitUsage
}

func exitCode(a *app, name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "cioq %s: %v\n", name, ue.err)
		if ue.hint != "" {
			fmt.Fprintln(a.stderr, ue.hint)
		}
		return exitUsage
	}
	var se silentError
	if errors.As(err, &se) {
		return int(se)
	}
	fmt.Fprintf(a.stderr, "cioq %s: %v\n", name, err)
	return exitFailure
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "cioq — durable delivery for Customer.io\n\nUsage:\n  cioq <command> [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `cioq <command> -h` for a command's flags. Configuration comes from the\nenvironment (REDIS_URL, CUSTOMERIO_*, CIOQ_*; see README.md); flags override it.\n")
}

// usageError is a usage or configuration error: exit code 2.
type usageError struct {
	err  error
	hint string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// configError wraps a configuration error (exit 2).
func configError(err error) error { return &usageError{err: err} }

// silentError is an exit code whose message was already printed.
type silentError int

func (e silentError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func runVersion(_ context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "version", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "cioq %s\n", version())
	return nil
}
