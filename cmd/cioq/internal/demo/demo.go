// Package demo is what `cioq demo` (and so `make run`) shows: it enqueues a
// set of scenarios through the producer, waits until each has arrived and,
// against the sandbox, prints what Customer.io would have received.
//
// The scenarios: a password reset email that expires after an hour, an order
// confirmation enqueued twice under one idempotency key (sent once), a
// welcome email to an address that bounces, segment-driving attributes for three people (high value, at risk, power
// user), anonymous page views merged into the person on signup, a company
// object with a member, a manual segment add, a broadcast trigger, and a
// Pipelines identify and track; with contracts, a password reset missing
// its reset_link refused at enqueue (naming the variable) and attributes
// sent as text and milliseconds coerced; with the sandbox, an anonymous page
// view arriving six minutes after the signup merge (Customer.io merges only
// within five) delivered as the person's. Scenarios of phase 2 need the
// state phase 1 creates in Customer.io (a person, an object, anonymous
// events), so they are enqueued once phase 1 has arrived; phase 3 once
// phase 2 has. With a status store, Run then prints what became of each
// message (its timeline's state, filled in by the sandbox's reporting
// webhooks) and one message's whole timeline.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/oklog/ulid/v2"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/status"
	"github.com/cioq/cioq/worker"
)

// Options is what Run needs: where to enqueue and how to tell that a
// scenario arrived.
type Options struct {
	// Out receives the progress and, with a sandbox, its summary.
	Out io.Writer
	// Producer enqueues the scenarios' tasks.
	Producer *producer.Client
	// Sandbox, when set, is where the worker delivers: a scenario has
	// arrived once the sandbox's state shows its effect. Nil against real
	// endpoints: a scenario has arrived once its tasks left the queue
	// (Inspector), and failed when they were dead-lettered (DLQ).
	Sandbox   *sandbox.Running
	Inspector *asynq.Inspector
	DLQ       *worker.DeadLetters
	// Timeout is how long each phase's scenarios may take to arrive.
	Timeout time.Duration
	// Contracts are the contracts the Producer (and the worker) check
	// tasks against; without them the contract scenarios are skipped.
	Contracts *contracts.Set
	// AdvanceSandboxClock moves the sandbox's clock forward (the late
	// anonymous event needs the merge window to pass); nil: that scenario
	// is skipped.
	AdvanceSandboxClock func(time.Duration)
	// Status, when set, reads each message's timeline once the scenarios
	// arrived: Run prints every send's and trigger's final state, waiting
	// (at most Timeout) for the reports that make a send's state final, and
	// PrintTimeline (when set) prints the first send's timeline.
	Status        *status.Store
	PrintTimeline func(io.Writer, *status.Timeline)
}

// Run enqueues the scenarios phase by phase, waits for each (a scenario
// that does not arrive within Timeout is reported, not an error) and, with
// a sandbox, prints what it received. Its error is an enqueue that failed
// or ctx's.
func Run(ctx context.Context, o Options) error {
	d := &demo{Options: o, run: strings.ToLower(ulid.Make().String()[20:])}
	if err := d.runScenarios(ctx); err != nil {
		return err
	}
	if o.Sandbox != nil {
		PrintSandboxSummary(o.Out, o.Sandbox)
	}
	if o.Status != nil {
		return d.printFates(ctx)
	}
	return nil
}

// demo is one run of the scenarios.
type demo struct {
	Options
	run string // distinguishes this run's idempotency keys
	// enqueued are the scenarios' receipts, in order.
	enqueued []enqueued
}

type enqueued struct {
	title    string
	receipts []producer.Receipt
}

func (d *demo) runScenarios(ctx context.Context) error {
	all := d.scenarios()
	fmt.Fprintf(d.Out, "Enqueueing the demo scenarios through the producer (phase 2 needs phase 1 delivered):\n")
	ok := 0
	skipped := 0
	for phase := 1; phase <= 3; phase++ {
		var batch []scenario
		for _, s := range all {
			if s.phase != phase {
				continue
			}
			if s.needs != nil {
				if why := s.needs(d); why != "" {
					skipped++
					fmt.Fprintf(d.Out, "  [%d] skipped   %s: %s\n", phase, s.title, why)
					continue
				}
			}
			batch = append(batch, s)
		}
		receipts, err := d.enqueuePhase(ctx, phase, batch)
		if err != nil {
			return err
		}
		n, err := d.awaitPhase(ctx, phase, batch, receipts)
		if err != nil {
			return err
		}
		ok += n
	}
	fmt.Fprintf(d.Out, "%d of %d scenarios delivered or refused as they should be", ok, len(all)-skipped)
	if skipped > 0 {
		fmt.Fprintf(d.Out, " (%d skipped)", skipped)
	}
	fmt.Fprintln(d.Out, ".")
	return nil
}

// enqueuePhase enqueues a phase's scenarios and prints their receipts.
func (d *demo) enqueuePhase(ctx context.Context, phase int, batch []scenario) ([][]producer.Receipt, error) {
	var receipts [][]producer.Receipt
	for _, s := range batch {
		if s.before != nil {
			s.before(d)
		}
		rs, err := s.enqueue(ctx, d.Producer)
		if s.refused {
			var ce *contracts.Error
			if !errors.As(err, &ce) {
				return nil, fmt.Errorf("enqueue %q: want a contract refusal, got %v", s.title, err)
			}
			fmt.Fprintf(d.Out, "  [%d] refused   %s\n              nothing enqueued: %s\n", phase, s.title, ce.Error())
			receipts = append(receipts, nil)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("enqueue %q: %w", s.title, err)
		}
		var parts []string
		for _, r := range rs {
			dup := ""
			if r.Duplicate {
				dup = " (duplicate: not enqueued again)"
			}
			parts = append(parts, fmt.Sprintf("%s→%s%s", r.Type, r.Queue, dup))
		}
		fmt.Fprintf(d.Out, "  [%d] enqueued  %s\n              %s\n", phase, s.title, strings.Join(parts, ", "))
		receipts = append(receipts, rs)
		d.enqueued = append(d.enqueued, enqueued{s.title, rs})
	}
	return receipts, nil
}

// awaitPhase waits up to Timeout for a phase's scenarios, prints whether
// each arrived and returns how many did; its error is only ctx's.
func (d *demo) awaitPhase(ctx context.Context, phase int, batch []scenario, receipts [][]producer.Receipt) (int, error) {
	deadline, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	ok := 0
	for i, s := range batch {
		if s.refused {
			ok++ // refused at enqueue, as it should be: nothing to wait for
			continue
		}
		var err error
		if d.Sandbox != nil {
			err = d.Sandbox.WaitFor(deadline, s.landed)
		} else {
			err = d.awaitTasks(deadline, receipts[i])
		}
		switch {
		case ctx.Err() != nil:
			return ok, ctx.Err()
		case err != nil:
			fmt.Fprintf(d.Out, "  [%d] MISSING   %s: not delivered within %s (%v); see `cioq dlq list` and the dashboard\n", phase, s.title, d.Timeout, err)
		default:
			ok++
			fmt.Fprintf(d.Out, "  [%d] delivered %s\n", phase, s.title)
		}
	}
	return ok, nil
}

// awaitTasks waits until every task has left the queue: delivered (gone
// or completed) or dead-lettered (an error naming it).
func (d *demo) awaitTasks(ctx context.Context, rs []producer.Receipt) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := 0
		for _, r := range rs {
			if r.Duplicate {
				continue
			}
			info, err := d.Inspector.GetTaskInfo(r.Queue, r.TaskID)
			switch {
			case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
				if _, derr := d.DLQ.Get(ctx, r.TaskID); derr == nil {
					return fmt.Errorf("task %s was dead-lettered", r.TaskID)
				}
			case err != nil:
				return err
			case info.State == asynq.TaskStateCompleted:
			case info.State == asynq.TaskStateArchived:
				return fmt.Errorf("task %s was dead-lettered", r.TaskID)
			default:
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d task(s) still queued", pending)
		case <-tick.C:
		}
	}
}

// printFates prints the state of every message the scenarios sent (sends
// and broadcast triggers), once each one's state is final or Timeout
// passed, then the timeline of the first that failed (or of the first).
func (d *demo) printFates(ctx context.Context) error {
	type fate struct {
		title string
		tl    *status.Timeline
	}
	var fates []fate
	deadline := time.Now().Add(d.Timeout)
	for _, e := range d.enqueued {
		for _, r := range e.receipts {
			if r.Duplicate || !strings.HasPrefix(r.Type, "cio:send_") && r.Type != "cio:broadcast_trigger" {
				continue
			}
			var tl *status.Timeline
			for {
				var err error
				tl, err = d.Status.Lookup(ctx, r.TaskID, status.LookupOptions{ShowIdentifiers: true})
				// A trigger is final once its messages' webhooks said so.
				if err == nil && tl.Final || time.Now().After(deadline) {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
			fates = append(fates, fate{e.title, tl})
		}
	}
	if len(fates) == 0 {
		return nil
	}
	fmt.Fprintf(d.Out, "\nWhat became of each message (Customer.io's reporting webhooks, here the sandbox's, received by serve):\n")
	tw := tabwriter.NewWriter(d.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  STATE\tTYPE\tTEMPLATE\tTASK\tSCENARIO\n")
	for _, f := range fates {
		if f.tl == nil {
			fmt.Fprintf(tw, "  (none)\t\t\t\t%s\n", f.title)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.tl.State, f.tl.Type, f.tl.Template, f.tl.TaskID, f.title)
	}
	tw.Flush()
	for _, f := range fates {
		if f.tl != nil && f.tl.Reason != "" {
			fmt.Fprintf(d.Out, "  %s %s: %s\n", f.tl.Template, f.tl.State, f.tl.Reason)
		}
	}
	// The timeline of a message that did not arrive says most.
	show := fates[0].tl
	for _, f := range fates {
		if f.tl != nil && f.tl.Reason != "" {
			show = f.tl
			break
		}
	}
	if d.PrintTimeline != nil && show != nil {
		fmt.Fprintf(d.Out, "\n$ cioq status %s --payload\n", show.TaskID)
		d.PrintTimeline(d.Out, show)
	}
	return nil
}
