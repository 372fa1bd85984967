package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/oklog/ulid/v2"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/internal/ops"
	"github.com/cioq/cioq/internal/redisconf"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// Demo defaults.
const (
	demoRedisURL     = "redis://127.0.0.1:6379/9"
	demoDashUser     = "admin"
	demoDashPassword = "demo"
)

func runDemo(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet(a, "demo", "[flags]",
		"The demo `make run` runs, in one process: the Customer.io sandbox, a worker\n"+
			"and the HTTP server (dashboard, metrics, health). It enqueues the brief's\n"+
			"scenarios through the producer (password reset and order confirmation\n"+
			"emails, segment attributes, anonymous page views merged on signup, a company\n"+
			"with a member, a manual segment, a broadcast, a Pipelines identify and\n"+
			"track), waits until the sandbox received them, prints what it received and\n"+
			"keeps running until Ctrl-C.\n\n"+
			"With Customer.io credentials in the environment (CUSTOMERIO_SITE_ID and\n"+
			"CUSTOMERIO_TRACK_API_KEY, CUSTOMERIO_APP_API_KEY or\n"+
			"CUSTOMERIO_PIPELINES_WRITE_KEY) it runs no sandbox: the worker delivers to\n"+
			"Customer.io (or the CUSTOMERIO_*_URL endpoints) and no demo data is sent\n"+
			"unless --scenarios is given.\n\n"+
			"Environment: REDIS_URL (default "+demoRedisURL+"), CUSTOMERIO_*,\n"+
			"CIOQ_DASHBOARD_USER and CIOQ_DASHBOARD_PASSWORD (default "+demoDashUser+"/"+demoDashPassword+"), CIOQ_*.")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address of the dashboard, /metrics and health (a free port if taken)")
	sandboxAddr := fs.String("sandbox-addr", "127.0.0.1:8025", "listen address of the sandbox (a free port if taken)")
	scenarios := fs.Bool("scenarios", false, "with real credentials: enqueue the demo scenarios anyway (they send real messages)")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the scenarios to arrive")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	log, err := newLogger(a.getenv, a.stderr)
	if err != nil {
		return err
	}
	rurl := strings.TrimSpace(a.getenv(redisconf.EnvVar))
	if rurl == "" {
		rurl = demoRedisURL
		log.Info("REDIS_URL is not set; using the demo's default", "redis", rurl)
	}

	// Real credentials or the sandbox?
	real := false
	for _, k := range []string{config.EnvSiteID, config.EnvTrackAPIKey, config.EnvAppAPIKey, config.EnvPipelinesWriteKey} {
		if strings.TrimSpace(a.getenv(k)) != "" {
			real = true
		}
	}
	overridden := false
	for _, k := range []string{config.EnvTrackURL, config.EnvAppURL, config.EnvPipelinesURL} {
		if strings.TrimSpace(a.getenv(k)) != "" {
			overridden = true
		}
	}
	var sb *sandbox.Running
	getenv := func(k string) string {
		if k == redisconf.EnvVar {
			return rurl
		}
		return a.getenv(k)
	}
	if !real {
		sb, err = sandbox.Start(*sandboxAddr, sandbox.Config{})
		if err != nil {
			log.Warn("sandbox address taken; using a free port", "addr", *sandboxAddr, "error", err.Error())
			if sb, err = sandbox.Start("127.0.0.1:0", sandbox.Config{}); err != nil {
				return err
			}
		}
		defer sb.Close()
		env := map[string]string{}
		for _, kv := range sandboxEnv(sb) {
			env[kv[0]] = kv[1]
		}
		getenv = func(k string) string {
			switch {
			case k == redisconf.EnvVar:
				return rurl
			case env[k] != "":
				return env[k]
			case strings.HasPrefix(k, "CUSTOMERIO_"):
				return ""
			}
			return a.getenv(k)
		}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return configError(err)
	}
	popts, err := keySecretOptions(a.getenv)
	if err != nil {
		return err
	}
	rdb, err := redisconf.UniversalClient(cfg.Redis)
	if err != nil {
		return configError(err)
	}
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("no Redis answers at %s (%v): `make run` starts one, or set REDIS_URL", redisconf.Redact(rurl), err)
	}

	reg := newRegistry()
	metrics := ops.NewMetrics(reg)
	wc := cfg.WorkerConfig()
	wc.Logger = log
	wc.Observer = metricsObserver{metrics}
	w, err := worker.New(wc)
	if err != nil {
		return configError(err)
	}

	user, pass := strings.TrimSpace(a.getenv(envDashboardUser)), a.getenv(envDashboardPassword)
	if user == "" && pass == "" {
		user, pass = demoDashUser, demoDashPassword
	}
	site, err := newSite(siteOptions{
		log: log, getenv: getenv, conn: cfg.Redis, rdb: rdb, reg: reg, metrics: metrics, producer: popts,
		dashboard:    ops.DashboardOptions{RedisConnOpt: cfg.Redis, Username: user, Password: pass},
		queueMetrics: true, // one process: no replica double counts
		checks:       workerChecks(w),
	})
	if err != nil {
		return err
	}
	defer site.Close()
	srv, err := listenHTTP(*addr, site)
	if err != nil {
		log.Warn("dashboard address taken; using a free port", "addr", *addr, "error", err.Error())
		if srv, err = listenHTTP("127.0.0.1:0", site); err != nil {
			return err
		}
	}
	if err := w.Start(); err != nil {
		srv.Close()
		return err
	}
	stopAll := func() {
		srv.Shutdown(5 * time.Second)
		w.Shutdown()
	}

	out := a.stdout
	target := "the embedded Customer.io sandbox at " + sandboxBaseOrEmpty(sb)
	if real {
		target = "Customer.io (" + workspacesString(cfg) + ")"
		if overridden {
			target = "the endpoints in CUSTOMERIO_TRACK_URL/APP_URL/PIPELINES_URL (" + workspacesString(cfg) + ")"
		}
	}
	fmt.Fprintf(out, "cioq %s demo: Redis %s, worker delivering to %s\n\n", version(), redisconf.Redact(rurl), target)

	if !real || *scenarios {
		p := producer.NewFromRedis(rdb, popts...)
		d := &demo{out: out, log: log, p: p, sb: sb, timeout: *timeout,
			inspector: asynq.NewInspectorFromRedisClient(rdb), dlq: w.DLQ(), run: strings.ToLower(ulid.Make().String()[20:])}
		if err := d.runScenarios(ctx); err != nil {
			stopAll()
			if ctx.Err() != nil {
				return nil // Ctrl-C while waiting
			}
			return err
		}
		if sb != nil {
			printSandboxSummary(out, sb)
		}
	} else {
		fmt.Fprintln(out, "Real credentials found: no demo data is sent (pass --scenarios to send it).")
		fmt.Fprintln(out, "Enqueue tasks with `cioq enqueue` or the producer; the worker delivers them.")
	}

	base := srv.URL()
	fmt.Fprintf(out, "\ncioq is running:\n")
	fmt.Fprintf(out, "  Dashboard        %s%s/   (user %q, password %q)\n", base, ops.DefaultDashboardRoot, user, maskUnlessDemo(user, pass))
	fmt.Fprintf(out, "  Metrics          %s/metrics\n", base)
	fmt.Fprintf(out, "  Health           %s/healthz  %s/readyz\n", base, base)
	if sb != nil {
		sbase := sandboxBase(sb)
		fmt.Fprintf(out, "  Sandbox control  %s/_sandbox/state  (also /_sandbox/people, /deliveries, /requests, /stats)\n", sbase)
	}
	fmt.Fprintf(out, "  Dead letters     REDIS_URL=%s go run ./cmd/cioq dlq list\n", redisconf.Redact(rurl))
	fmt.Fprintf(out, "  Enqueue more     echo '{\"identifiers\":{\"id\":\"user-42\"},\"attributes\":{\"plan\":\"pro\"}}' | REDIS_URL=%s go run ./cmd/cioq enqueue cio:identify\n", redisconf.Redact(rurl))
	fmt.Fprintf(out, "\nPress Ctrl-C to stop.\n")

	<-ctx.Done()
	log.Info("shutting down the demo")
	stopAll()
	return nil
}

func sandboxBaseOrEmpty(sb *sandbox.Running) string {
	if sb == nil {
		return ""
	}
	return sandboxBase(sb)
}

// maskUnlessDemo prints the demo's well-known password, never one the
// operator chose.
func maskUnlessDemo(user, pass string) string {
	if user == demoDashUser && pass == demoDashPassword {
		return pass
	}
	return "from CIOQ_DASHBOARD_PASSWORD"
}

// demo enqueues the scenarios and waits for them.
type demo struct {
	out       io.Writer
	log       *slog.Logger
	p         *producer.Client
	sb        *sandbox.Running // nil against real endpoints
	inspector *asynq.Inspector
	dlq       *worker.DeadLetters
	timeout   time.Duration
	run       string // distinguishes this run's idempotency keys
}

// scenario is one of the brief's scenarios.
type scenario struct {
	title string
	// phase 2 scenarios need phase 1's state in Customer.io (a person, an
	// object, anonymous events): they are enqueued once phase 1 arrived.
	phase   int
	enqueue func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error)
	// landed reports whether the sandbox shows the scenario's effect.
	landed func(s *sandbox.Server) bool
}

const (
	companyType = "1" // object type id of "Companies"
	anonID      = "anon-7f3a"
	segmentID   = 3
	broadcastID = 1
)

func (d *demo) scenarios() []scenario {
	one := func(r producer.Receipt, err error) ([]producer.Receipt, error) {
		if err != nil {
			return nil, err
		}
		return []producer.Receipt{r}, nil
	}
	many := func(calls ...func() (producer.Receipt, error)) ([]producer.Receipt, error) {
		var rs []producer.Receipt
		for _, c := range calls {
			r, err := c()
			if err != nil {
				return rs, err
			}
			rs = append(rs, r)
		}
		return rs, nil
	}
	hasDelivery := func(template string) func(*sandbox.Server) bool {
		return func(s *sandbox.Server) bool {
			for _, dl := range s.Deliveries() {
				if dl.TransactionalMessageID == template {
					return true
				}
			}
			return false
		}
	}
	hasAttr := func(s *sandbox.Server, id, attr string) bool {
		p, ok := s.Person(id)
		_, has := p.Attributes[attr]
		return ok && has
	}
	order := tasks.SendEmail{
		SendOptions: customerio.SendOptions{
			TransactionalMessageID: "order_confirmation",
			Identifiers:            &customerio.Identifiers{ID: "user-1002"},
			MessageData: map[string]any{
				"order_id": "ORD-12345",
				"items":    []map[string]any{{"name": "Product A", "quantity": 2, "price": 29.99}},
				"total":    59.98,
			},
		},
		To: "grace@example.com",
	}
	orderKey := "order-ORD-12345:confirmation:" + d.run
	return []scenario{
		{
			title: "password reset email, expires in 1h (past that it is dead-lettered, never sent late)",
			phase: 1,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				return one(p.SendEmail(ctx, tasks.SendEmail{
					SendOptions: customerio.SendOptions{
						TransactionalMessageID: "password_reset",
						Identifiers:            &customerio.Identifiers{ID: "user-1001"},
						MessageData: map[string]any{
							"reset_link":   "https://app.example.com/reset?token=abc123",
							"expiry_hours": 1,
						},
					},
					To: "ada@example.com",
				}, producer.ExpiresIn(time.Hour)))
			},
			landed: hasDelivery("password_reset"),
		},
		{
			title: "order confirmation email, enqueued twice with one idempotency key (sent once)",
			phase: 1,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				return many(
					func() (producer.Receipt, error) { return p.SendEmail(ctx, order, producer.IdempotencyKey(orderKey)) },
					func() (producer.Receipt, error) { return p.SendEmail(ctx, order, producer.IdempotencyKey(orderKey)) },
				)
			},
			landed: hasDelivery("order_confirmation"),
		},
		{
			title: "segment attributes: user-1001 high value, user-1002 at risk, user-1003 power user",
			phase: 1,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				now := time.Now().Unix()
				people := []tasks.Identify{
					{Identifiers: customerio.Identifiers{ID: "user-1001"}, Attributes: map[string]any{
						"email": "ada@example.com", "total_revenue": 1000, "order_count": 10, "average_order_value": 100, "last_active_at": now}},
					{Identifiers: customerio.Identifiers{ID: "user-1002"}, Attributes: map[string]any{
						"email": "grace@example.com", "days_since_last_login": 30, "churn_risk_score": 0.8}},
					{Identifiers: customerio.Identifiers{ID: "user-1003"}, Attributes: map[string]any{
						"email": "linus@example.com", "session_count": 100, "premium_features_used": true, "features_used": []string{"reports", "exports"}}},
				}
				var rs []producer.Receipt
				for _, pi := range people {
					r, err := p.Identify(ctx, pi)
					if err != nil {
						return rs, err
					}
					rs = append(rs, r)
				}
				return rs, nil
			},
			landed: func(s *sandbox.Server) bool {
				return hasAttr(s, "user-1001", "total_revenue") && hasAttr(s, "user-1002", "churn_risk_score") && hasAttr(s, "user-1003", "session_count")
			},
		},
		{
			title: "anonymous page views of visitor " + anonID + ": /, /pricing, /signup",
			phase: 1,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				var rs []producer.Receipt
				for _, page := range []string{"/", "/pricing", "/signup"} {
					r, err := p.TrackAnonymous(ctx, tasks.TrackAnonymous{
						AnonymousID: anonID, Name: page, Type: customerio.EventTypePage,
						Data: map[string]any{"referrer": "https://www.google.com/"},
					})
					if err != nil {
						return rs, err
					}
					rs = append(rs, r)
				}
				return rs, nil
			},
			landed: func(s *sandbox.Server) bool { return len(s.AnonymousEvents(anonID)) >= 3 || mergedEvents(s) >= 3 },
		},
		{
			title: "company object acme (plan, mrr, employee_count)",
			phase: 1,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				return one(p.UpsertObject(ctx, tasks.ObjectUpsert{
					ObjectTypeID: companyType, ObjectID: "acme",
					Attributes: map[string]any{"name": "Acme Inc", "plan": "enterprise", "mrr": 4200, "employee_count": 250, "industry": "manufacturing"},
				}))
			},
			landed: func(s *sandbox.Server) bool { _, ok := s.Object(companyType, "acme"); return ok },
		},
		{
			title: "Pipelines (CDP) identify and track of user-1005",
			phase: 1,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				return many(
					func() (producer.Receipt, error) {
						return p.CDPIdentify(ctx, tasks.CDPIdentify{UserID: "user-1005", Traits: map[string]any{"email": "margaret@example.com", "plan": "pro"}})
					},
					func() (producer.Receipt, error) {
						return p.CDPTrack(ctx, tasks.CDPTrack{UserID: "user-1005", Event: "Order Completed",
							Properties: map[string]any{"order_id": "ORD-12346", "revenue": 59.98}})
					},
				)
			},
			landed: func(s *sandbox.Server) bool {
				var id, tr bool
				for _, m := range s.CDPMessages() {
					if m.Body["userId"] == "user-1005" {
						id = id || m.Type == "identify"
						tr = tr || m.Type == "track"
					}
				}
				return id && tr
			},
		},
		{
			title: "signup of user-1004 merges " + anonID + "'s page views",
			phase: 2,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				return one(p.MergeAnonymous(ctx, tasks.MergeAnonymous{
					Identifiers: customerio.Identifiers{ID: "user-1004"}, AnonymousID: anonID,
					Attributes: map[string]any{"email": "alan@example.com", "created_at": time.Now().Unix()},
				}))
			},
			landed: func(s *sandbox.Server) bool { return mergedEvents(s) >= 3 },
		},
		{
			title: "user-1001 joins company acme as admin (relationship)",
			phase: 2,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				return one(p.Relate(ctx, tasks.Relate{
					Identifiers: customerio.Identifiers{ID: "user-1001"}, ObjectTypeID: companyType, ObjectID: "acme",
					RelationshipAttributes: map[string]any{"role": "admin"},
				}))
			},
			landed: func(s *sandbox.Server) bool {
				for _, r := range s.Relationships("user-1001") {
					if r.ObjectID == "acme" {
						return true
					}
				}
				return false
			},
		},
		{
			title: fmt.Sprintf("manual segment %d: add user-1001 and user-1003", segmentID),
			phase: 2,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				return one(p.AddToSegment(ctx, tasks.SegmentAdd{SegmentID: segmentID, IDs: []string{"user-1001", "user-1003"}}))
			},
			landed: func(s *sandbox.Server) bool { m, _ := s.SegmentMembers(segmentID); return len(m) >= 2 },
		},
		{
			title: fmt.Sprintf("broadcast %d triggered for the three segment people", broadcastID),
			phase: 2,
			enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
				return one(p.TriggerBroadcast(ctx, tasks.BroadcastTrigger{BroadcastID: broadcastID,
					TriggerBroadcastRequest: customerio.TriggerBroadcastRequest{
						Data: map[string]any{"headline": "Spring sale"},
						IDs:  []string{"user-1001", "user-1002", "user-1003"},
					}}))
			},
			landed: func(s *sandbox.Server) bool {
				for _, t := range s.Triggers() {
					if t.BroadcastID == broadcastID {
						return true
					}
				}
				return false
			},
		},
	}
}

// mergedEvents counts anonID's events now on a person.
func mergedEvents(s *sandbox.Server) int {
	n := 0
	for _, e := range s.Events("user-1004") {
		if e.AnonymousID == anonID {
			n++
		}
	}
	return n
}

func (d *demo) runScenarios(ctx context.Context) error {
	all := d.scenarios()
	fmt.Fprintf(d.out, "Enqueueing the brief's scenarios through the producer (phase 2 needs phase 1 delivered):\n")
	ok := 0
	for phase := 1; phase <= 2; phase++ {
		var batch []scenario
		var receipts [][]producer.Receipt
		for _, s := range all {
			if s.phase != phase {
				continue
			}
			rs, err := s.enqueue(ctx, d.p)
			if err != nil {
				return fmt.Errorf("enqueue %q: %w", s.title, err)
			}
			var parts []string
			for _, r := range rs {
				dup := ""
				if r.Duplicate {
					dup = " (duplicate: not enqueued again)"
				}
				parts = append(parts, fmt.Sprintf("%s→%s%s", r.Type, r.Queue, dup))
			}
			fmt.Fprintf(d.out, "  [%d] enqueued  %s\n              %s\n", phase, s.title, strings.Join(parts, ", "))
			batch = append(batch, s)
			receipts = append(receipts, rs)
		}
		deadline, cancel := context.WithTimeout(ctx, d.timeout)
		for i, s := range batch {
			var err error
			if d.sb != nil {
				err = d.sb.WaitFor(deadline, s.landed)
			} else {
				err = d.awaitTasks(deadline, receipts[i])
			}
			switch {
			case ctx.Err() != nil:
				cancel()
				return ctx.Err()
			case err != nil:
				fmt.Fprintf(d.out, "  [%d] MISSING   %s: not delivered within %s (%v); see `cioq dlq list` and the dashboard\n", phase, s.title, d.timeout, err)
			default:
				ok++
				fmt.Fprintf(d.out, "  [%d] delivered %s\n", phase, s.title)
			}
		}
		cancel()
	}
	fmt.Fprintf(d.out, "%d of %d scenarios delivered.\n", ok, len(all))
	return nil
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
			info, err := d.inspector.GetTaskInfo(r.Queue, r.TaskID)
			switch {
			case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
				if _, derr := d.dlq.Get(ctx, r.TaskID); derr == nil {
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

// printSandboxSummary prints what the sandbox received: it is a demo with
// fake data, so identifiers and attributes are shown.
func printSandboxSummary(w io.Writer, sb *sandbox.Running) {
	snap := sb.Snapshot()
	stats := sb.Stats()
	fmt.Fprintf(w, "\nWhat the sandbox (standing in for Customer.io) received:\n")

	fmt.Fprintf(w, "\n  Requests by endpoint (%d in all):\n", stats.Total)
	counts := map[string]int{}
	statuses := map[string]map[int]int{}
	for _, r := range sb.Requests(sandbox.RequestFilter{}) {
		k := r.Method + " " + endpointOf(r.Path)
		counts[k]++
		if statuses[k] == nil {
			statuses[k] = map[int]int{}
		}
		statuses[k][r.Status]++
	}
	for _, k := range sortedKeys(counts) {
		var st []string
		for _, code := range sortedInts(statuses[k]) {
			st = append(st, fmt.Sprintf("%d×%d", statuses[k][code], code))
		}
		fmt.Fprintf(w, "    %3d  %-52s %s\n", counts[k], k, strings.Join(st, " "))
	}

	byCio := map[string]string{}
	fmt.Fprintf(w, "\n  People (%d):\n", len(snap.People))
	for _, p := range snap.People {
		name := p.ID
		if name == "" {
			name = p.Email
		}
		byCio[p.CioID] = name
		fmt.Fprintf(w, "    %-10s %s\n", name, attrString(p.Attributes))
	}

	fmt.Fprintf(w, "\n  Events:\n")
	n := 0
	for _, p := range snap.People {
		for _, e := range p.Events {
			n++
			from := ""
			if e.AnonymousID != "" {
				from = " (anonymous " + e.AnonymousID + ", merged on signup)"
			}
			fmt.Fprintf(w, "    %-10s %-6s %-18s %s%s\n", byCio[p.CioID], e.Type, e.Name, attrString(e.Data), from)
		}
	}
	for anon, evs := range snap.AnonymousEvents {
		for _, e := range evs {
			n++
			fmt.Fprintf(w, "    %-10s %-6s %-18s %s (not merged yet)\n", anon, e.Type, e.Name, attrString(e.Data))
		}
	}
	if n == 0 {
		fmt.Fprintf(w, "    (none)\n")
	}

	fmt.Fprintf(w, "\n  Transactional deliveries (%d):\n", len(snap.Deliveries))
	for _, dl := range snap.Deliveries {
		fmt.Fprintf(w, "    %-6s %-20s to %-22s %s\n", dl.Channel, dl.TransactionalMessageID, dl.To, attrString(dl.MessageData))
	}

	fmt.Fprintf(w, "\n  Objects and relationships:\n")
	for _, o := range snap.Objects {
		fmt.Fprintf(w, "    object %s/%s  %s\n", o.TypeID, o.ID, attrString(o.Attributes))
	}
	for _, r := range snap.Relationships {
		who := byCio[r.PersonCioID]
		if who == "" {
			who = r.AnonymousID
		}
		fmt.Fprintf(w, "    %s → object %s/%s  %s\n", who, r.ObjectTypeID, r.ObjectID, attrString(r.Attributes))
	}

	fmt.Fprintf(w, "\n  Manual segments:\n")
	for _, id := range sortedInts(lenMap(snap.Segments)) {
		members := snap.Segments[id]
		if len(members) == 0 {
			continue
		}
		names := make([]string, len(members))
		for i, c := range members {
			names[i] = byCio[c]
		}
		fmt.Fprintf(w, "    segment %d: %s\n", id, strings.Join(names, ", "))
	}

	fmt.Fprintf(w, "\n  Broadcast triggers (%d):\n", len(snap.Triggers))
	for _, t := range snap.Triggers {
		state := "queued"
		if !t.ProcessedAt.IsZero() {
			state = "processed"
		}
		fmt.Fprintf(w, "    broadcast %d  trigger %d  recipients by %s  %s  data %s\n", t.BroadcastID, t.ID, t.Shape, state, attrString(asMap(t.Body["data"])))
	}

	fmt.Fprintf(w, "\n  Pipelines (CDP) messages (%d):\n", len(snap.CDPMessages))
	for _, m := range snap.CDPMessages {
		what := ""
		switch m.Type {
		case "identify":
			what = "traits " + attrString(asMap(m.Body["traits"]))
		case "track":
			what = fmt.Sprintf("%q %s", m.Body["event"], attrString(asMap(m.Body["properties"])))
		}
		fmt.Fprintf(w, "    %-8s userId %-10v %s\n", m.Type, m.Body["userId"], what)
	}
}

// endpointOf replaces identifiers in a recorded path with placeholders.
func endpointOf(path string) string {
	segs := strings.Split(path, "/")
	for i := 1; i < len(segs); i++ {
		switch segs[i-1] {
		case "customers", "campaigns", "segments", "triggers", "devices":
			if segs[i] != "" {
				segs[i] = "{id}"
			}
		}
	}
	return strings.Join(segs, "/")
}

func attrString(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedInts[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func lenMap(m map[int][]string) map[int]int {
	out := make(map[int]int, len(m))
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}
