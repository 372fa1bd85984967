package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/ingest"
	"github.com/cioq/cioq/internal/testredis"
	"github.com/cioq/cioq/internal/testsupport"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
	"github.com/cioq/cioq/worker"
)

// TestBadPayloadReadsTheSameEverywhere: a payload with a wrong-typed or
// non-UTF-8 field is refused by `cioq enqueue` and by POST /v1/tasks, and a
// worker that finds it in a queue (enqueued by something other than cioq)
// dead-letters it, and all three say the same thing: invalid field "<the
// JSON path as the user wrote it>": <what was expected, what was found>.
// The path is the payload's for the CLI and the worker (stdin and the
// task's bytes are the payload) and starts at "payload." for /v1/tasks,
// where the payload is a field of the request.
func TestBadPayloadReadsTheSameEverywhere(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	sb := sandbox.New(sandbox.Config{AppRateLimit: -1, BroadcastInterval: -1})
	hs := httptest.NewServer(sb)
	t.Cleanup(func() { hs.Close(); sb.Close() })
	w, err := worker.New(worker.Config{
		Redis:       db.ConnOpt(),
		Workspaces:  map[string]customerio.Config{"": testsupport.SandboxConfig(hs.URL)},
		Concurrency: 2,
		Logger:      testsupport.Logger(),
		// No credentials probes: the test counts the sandbox's requests.
		ProbeInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	prod := producer.NewFromRedis(db.Client)
	ing, err := ingest.New(ingest.Config{Producer: prod, File: &ingest.FileConfig{Tokens: []ingest.TokenConfig{{Name: "t", Token: "tok"}}},
		Logger: testsupport.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(ing)
	t.Cleanup(front.Close)
	ac := asynq.NewClientFromRedisClient(db.Client)
	t.Cleanup(func() { ac.Close() })
	env := map[string]string{"REDIS_URL": db.URL()}

	for _, c := range []struct {
		name, typ, payload, field, reason string
	}{
		{"fraction", "cio:track", `{"identifiers":{"id":"u"},"name":"ev","timestamp":1.5}`, "timestamp", "must be an integer, got 1.5"},
		{"object for a message id", "cio:send_email", `{"transactional_message_id":{"a":1},"to":"ada@example.com","identifiers":{"id":"u"}}`,
			"transactional_message_id", "must be a number or a string, got an object"},
		{"array in an embedded struct", "cio:send_email", `{"transactional_message_id":1,"message_data":[1],"to":"ada@example.com"}`,
			"message_data", "must be an object, got an array"},
		{"in an array", "cio:broadcast_trigger", `{"broadcast_id":1,"per_user_data":[{"id":"a"},{"id":5}]}`, "per_user_data[1].id", "must be a string, got a number"},
		{"not UTF-8", "cio:track", "{\"identifiers\":{\"id\":\"u\xff\xfe\xc31\"},\"name\":\"ev\"}", "identifiers.id", "is not valid UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := `invalid field "` + c.field + `": ` + c.reason

			r := cli(t, env, c.payload, "enqueue", c.typ)
			if r.code != 1 || strings.TrimSpace(r.stderr) != "cioq enqueue: "+c.typ+": "+want {
				t.Errorf("cioq enqueue: exit %d, stderr %q, want %q", r.code, r.stderr, "cioq enqueue: "+c.typ+": "+want)
			}

			body := []byte(`{"type":"` + c.typ + `","payload":` + c.payload + `}`)
			hr, _ := http.NewRequest(http.MethodPost, front.URL+"/v1/tasks", bytes.NewReader(body))
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set("Authorization", "Bearer tok")
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Error struct{ Code, Message, Field string }
			}
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			wantHTTP := `invalid field "payload.` + c.field + `": ` + c.reason
			if resp.StatusCode != 400 || out.Error.Field != "payload."+c.field || !strings.HasSuffix(out.Error.Message, wantHTTP) {
				t.Errorf("/v1/tasks: %d %+v, want field payload.%s and a message ending %q", resp.StatusCode, out.Error, c.field, wantHTTP)
			}

			info, err := ac.Enqueue(asynq.NewTask(c.typ, []byte(c.payload)), asynq.Queue("default"))
			if err != nil {
				t.Fatal(err)
			}
			var d *worker.DeadLetter
			deadline := time.Now().Add(20 * time.Second)
			for d == nil && time.Now().Before(deadline) {
				d, _ = w.DLQ().Get(context.Background(), info.ID)
				time.Sleep(20 * time.Millisecond)
			}
			if d == nil {
				t.Fatal("no dead letter")
			}
			if d.Class != worker.DeadLetterInvalid || d.Error != "tasks: decode "+c.typ+": "+want {
				t.Errorf("dead letter %s %q, want invalid %q", d.Class, d.Error, "tasks: decode "+c.typ+": "+want)
			}
		})
	}
	if st := sb.Stats(); st.Total != 0 {
		t.Errorf("the sandbox saw %d requests", st.Total)
	}
}

// TestUnknownFieldRefusedAtEveryEntryPoint: for every cio:* type, a payload
// field the type does not have (a typo) is refused before anything is
// queued, naming the field as the user wrote it, by `cioq enqueue`, POST
// /v1/tasks and the producer's EnqueueRaw; nothing reaches Redis.
func TestUnknownFieldRefusedAtEveryEntryPoint(t *testing.T) {
	t.Parallel()
	db := testredis.New(t)
	prod := producer.NewFromRedis(db.Client)
	ing, err := ingest.New(ingest.Config{Producer: prod, File: &ingest.FileConfig{Tokens: []ingest.TokenConfig{{Name: "t", Token: "tok"}}},
		Logger: testsupport.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(ing)
	t.Cleanup(front.Close)
	env := map[string]string{"REDIS_URL": db.URL()}
	const payload = `{"trackd":true}`
	n := 0
	for _, spec := range tasks.Types() {
		if !strings.HasPrefix(spec.Type, "cio:") {
			continue
		}
		n++
		want := `invalid field "trackd": not a field of ` + spec.Type

		r := cli(t, env, payload, "enqueue", spec.Type)
		if r.code != 1 || strings.TrimSpace(r.stderr) != "cioq enqueue: "+spec.Type+": "+want {
			t.Errorf("cioq enqueue %s: exit %d, stderr %q", spec.Type, r.code, r.stderr)
		}

		body := []byte(`{"type":"` + spec.Type + `","payload":` + payload + `}`)
		hr, _ := http.NewRequest(http.MethodPost, front.URL+"/v1/tasks", bytes.NewReader(body))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Error struct{ Code, Message, Field string }
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 400 || out.Error.Field != "payload.trackd" || !strings.HasSuffix(out.Error.Message, "not a field of "+spec.Type) {
			t.Errorf("/v1/tasks %s: %d %+v", spec.Type, resp.StatusCode, out.Error)
		}

		_, err = prod.EnqueueRaw(context.Background(), spec.Type, json.RawMessage(payload))
		var ve *customerio.ValidationError
		if !errors.As(err, &ve) || ve.Field != "trackd" || ve.Reason != "not a field of "+spec.Type {
			t.Errorf("EnqueueRaw %s: %v", spec.Type, err)
		}
	}
	if n < 20 {
		t.Errorf("only %d cio:* types", n)
	}
	if keys, _ := db.Client.Keys(context.Background(), "asynq:*:t:*").Result(); len(keys) != 0 {
		t.Errorf("%d tasks reached Redis", len(keys))
	}
}
