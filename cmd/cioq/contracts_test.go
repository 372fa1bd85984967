package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/contracts"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/tasks"
)

const cliContracts = `{"workspaces": {"default": {
  "transactional": {"strict_ids": true, "messages": [{"id": 1, "trigger": "password_reset", "channel": "email",
    "variables": {"reset_link": {"type": "string"}, "expiry_hours": {"type": "number", "optional": true}}}]},
  "attributes": {"people": {"attributes": {
    "churn_risk_score": {"type": "number"},
    "total_revenue": {"type": "number", "policy": "coerce"}}}},
  "events": {"timestamp_policy": "coerce"}}}}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEnqueueContracts: `cioq enqueue` refuses each row of the seed's
// table, naming the field (and the line), enqueues nothing of a file with
// one refused line, and stores a coerced attribute coerced.
func TestEnqueueContracts(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	env := map[string]string{"REDIS_URL": db.URL(), "CIOQ_CONTRACTS_FILE": writeFile(t, "contracts.json", cliContracts)}
	for _, tc := range []struct{ typ, payload, want string }{
		{"cio:send_email", `{"transactional_message_id":42,"to":"a@example.com","identifiers":{"id":"u"}}`,
			`invalid field "transactional_message_id": must name a template of the contracts of workspace "default" (strict_ids), got 42`},
		{"cio:send_email", `{"transactional_message_id":"password_reset","to":"a@example.com","identifiers":{"id":"u"},"message_data":{"expiry_hours":1}}`,
			`invalid field "message_data.reset_link": required by template "password_reset" (id 1), missing`},
		{"cio:identify", `{"identifiers":{"id":"u"},"attributes":{"churn_risk_score":"0.8"}}`,
			`invalid field "attributes.churn_risk_score": declared a number (people attributes), got a string`},
	} {
		r := cli(t, env, tc.payload, "enqueue", tc.typ)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tc.typ, r.code, r.stderr, tc.want)
		}
	}
	file := writeFile(t, "tasks.jsonl", `{"type":"cio:identify","payload":{"identifiers":{"id":"u1"},"attributes":{"total_revenue":"1000"}}}
{"type":"cio:send_email","payload":{"transactional_message_id":1,"to":"a@example.com","identifiers":{"id":"u"}}}
`)
	r := cli(t, env, "", "enqueue", "--file", file)
	if r.code != 1 || !strings.Contains(r.stderr, `line 2: cio:send_email: invalid field "message_data.reset_link"`) {
		t.Errorf("--file: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := queued(t, db); n != 0 {
		t.Fatalf("%d task(s) enqueued for a file with a refused line", n)
	}
	r = cli(t, env, `{"identifiers":{"id":"u1"},"attributes":{"total_revenue":"1000"}}`, "enqueue", "cio:identify")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rs := receipts(t, r.stdout)
	info, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo(rs[0].Queue, rs[0].TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(info.Payload), `"total_revenue":1000`) {
		t.Errorf("stored %s: want the coerced number", info.Payload)
	}
}

// TestContractsCommands: pull writes the sandbox's templates' variables
// into a file keeping its hand-written rules; show prints them; check
// lints JSON lines and CSV, with counts per rule and examples by line.
func TestContractsCommands(t *testing.T) {
	t.Parallel()
	sb := sandbox.NewTestServer(t)
	file := writeFile(t, "contracts.json", `{"workspaces":{"default":{"attributes":{"people":{"policy":"coerce","attributes":{"total_revenue":{"type":"number"},"plan":{"type":"string","policy":"refuse"}}}}}}}`)
	env := map[string]string{"CUSTOMERIO_APP_API_KEY": sandbox.DefaultAppAPIKey, "CUSTOMERIO_APP_URL": sb.AppURL(), "CIOQ_CONTRACTS_FILE": file}

	r := cli(t, env, "", "contracts", "pull")
	if r.code != 0 || !strings.Contains(r.stdout, `added: 1 "password_reset", 2 "order_confirmation"`) ||
		!strings.Contains(r.stdout, `message 2 "order_confirmation" (email): 5 required, 2 optional variable(s)`) {
		t.Fatalf("pull: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	set, err := contracts.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	w := set.File().Workspaces["default"]
	if w.Attributes.People.Attributes["total_revenue"].Type != "number" || w.Attributes.People.Policy != "coerce" {
		t.Errorf("pull changed the hand-written attribute rules: %+v", w.Attributes.People)
	}
	if v := w.Transactional.Messages[1].Variables["items[].price"]; v == nil || v.Optional {
		t.Errorf("order_confirmation variables %v", w.Transactional.Messages[1].Variables)
	}
	if r := cli(t, env, "", "contracts", "pull", "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, `"source": "pulled"`) {
		t.Errorf("pull --dry-run: exit %d\n%s", r.code, r.stdout)
	}

	r = cli(t, env, "", "contracts", "show")
	for _, want := range []string{"workspace default", `1 "password_reset", channel email, pulled`, "reset_link", "required", "expiry_hours", "optional", "(has a default)",
		"items[].price", "people attributes (policy coerce):", "plan", "refuse", "event timestamps: not checked"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q: exit %d\n%s%s", want, r.code, r.stdout, r.stderr)
		}
	}

	lines := writeFile(t, "tasks.jsonl", `{"type":"cio:send_email","payload":{"transactional_message_id":"password_reset","to":"a@example.com","identifiers":{"id":"u"}}}
{"type":"cio:send_email","payload":{"transactional_message_id":"password_reset","to":"a@example.com","identifiers":{"id":"u"},"message_data":{"reset_link":"x"}}}
{"type":"cio:identify","payload":{"identifiers":{"id":"u"},"attributes":{"total_revenue":"1000","plan":7}}}
{"type":"cio:identify","payload":{"identifiers":{"id":"u"},"attributes":{"total_revenue":"12"}}}
{"type":"cio:track","payload":{"identifiers":{"id":"u"}}}
`)
	r = cli(t, env, "", "contracts", "check", lines)
	for _, want := range []string{"5 line(s): 2 accepted (1 with coerced values), 3 refused",
		"required", `line 1: cio:send_email: message_data.reset_link: required by template "password_reset" (id 1), missing`,
		"type", "line 3: cio:identify: attributes.plan: declared a string (people attributes), got a number",
		"coerced number", "line 4: cio:identify: attributes.total_revenue: a string coerced to number",
		"invalid", "line 5: cio:track:"} {
		if r.code != 1 || !strings.Contains(r.stdout, want) {
			t.Errorf("check lacks %q: exit %d\n%s%s", want, r.code, r.stdout, r.stderr)
		}
	}
	csvFile := writeFile(t, "people.csv", "id,total_revenue,plan\nu1,1000,pro\nu2,lots,pro\n")
	r = cli(t, env, "", "contracts", "check", csvFile)
	if r.code != 1 || !strings.Contains(r.stdout, "2 line(s): 1 accepted (1 with coerced values), 1 refused") ||
		!strings.Contains(r.stdout, "line 3: cio:identify: attributes.total_revenue: declared a number (people attributes), got a string that cannot be coerced") {
		t.Errorf("check CSV: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := cli(t, env, `{"identifiers":{"id":"u"},"attributes":{"total_revenue":5}}`, "contracts", "check", "-", "--type", tasks.TypeIdentify); r.code != 0 {
		t.Errorf("check of a clean bare payload: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
