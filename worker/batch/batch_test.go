package batch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/worker/batch"
)

func event(name string) customerio.Operation {
	return customerio.Operation{Type: customerio.EntityPerson, Action: customerio.ActionEvent,
		Identifiers: &customerio.Identifiers{ID: "user-1"}, Name: name}
}

// body encodes ops exactly as the client does.
func body(t testing.TB, ops []customerio.Operation) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Batch []customerio.Operation `json:"batch"`
	}{ops}); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// recorder is a SendFunc that records every batch and answers with answer
// (nil: all accepted).
type recorder struct {
	mu      sync.Mutex
	batches [][]customerio.Operation
	delay   time.Duration
	answer  func(ops []customerio.Operation) (customerio.BatchResult, error)
}

func (r *recorder) send(ctx context.Context, ops []customerio.Operation) (customerio.BatchResult, error) {
	r.mu.Lock()
	r.batches = append(r.batches, append([]customerio.Operation(nil), ops...))
	r.mu.Unlock()
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	if r.answer != nil {
		return r.answer(ops)
	}
	return customerio.BatchResult{}, nil
}

func (r *recorder) sent() [][]customerio.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]customerio.Operation(nil), r.batches...)
}

// doAll runs Do for every op concurrently and returns the errors by op.
func doAll(b *batch.Batcher, ops []customerio.Operation) []error {
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Do(context.Background(), op)
		}()
	}
	wg.Wait()
	return errs
}

func names(n int) []customerio.Operation {
	ops := make([]customerio.Operation, n)
	for i := range ops {
		ops[i] = event(fmt.Sprintf("ev-%d", i))
	}
	return ops
}

func TestCoalescesConcurrentCalls(t *testing.T) {
	rec := &recorder{delay: 2 * time.Millisecond}
	b := batch.New(rec.send, batch.Config{})
	defer b.Close()
	ops := names(100)
	for i, err := range doAll(b, ops) {
		if err != nil {
			t.Errorf("op %d: %v", i, err)
		}
	}
	batches := rec.sent()
	seen := map[string]int{}
	for _, bt := range batches {
		for _, op := range bt {
			seen[op.Name]++
		}
	}
	for _, op := range ops {
		if seen[op.Name] != 1 {
			t.Errorf("%s sent %d times", op.Name, seen[op.Name])
		}
	}
	if len(batches) > 20 {
		t.Errorf("100 concurrent ops took %d requests, want far fewer", len(batches))
	}
	st := b.Stats()
	if st.Ops != 100 || st.Batches != int64(len(batches)) {
		t.Errorf("stats %+v, want 100 ops in %d batches", st, len(batches))
	}
	t.Logf("100 ops in %d requests (%.1f ops/request)", len(batches), st.OpsPerBatch())
}

func TestItemErrorsFailOnlyTheirItems(t *testing.T) {
	rec := &recorder{answer: func(ops []customerio.Operation) (customerio.BatchResult, error) {
		return customerio.BatchResult{Errors: []customerio.BatchItemError{
			{BatchIndex: 3, Reason: "invalid", Field: "attributes", Message: "Attribute value too long"},
			{BatchIndex: 7, Reason: "invalid", Message: "name cannot be blank"},
		}}, nil
	}}
	// MaxOps 10 and a long linger: the ten ops go out as one request.
	b := batch.New(rec.send, batch.Config{MaxOps: 10, Linger: time.Hour})
	defer b.Close()
	ops := names(10)
	errs := doAll(b, ops)
	batches := rec.sent()
	if len(batches) != 1 || len(batches[0]) != 10 {
		t.Fatalf("sent %d batches, want one of 10", len(batches))
	}
	pos := map[string]int{}
	for i, op := range batches[0] {
		pos[op.Name] = i
	}
	for i, op := range ops {
		err := errs[i]
		switch pos[op.Name] {
		case 3, 7:
			var ae *customerio.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("item %d: %v, want *APIError", pos[op.Name], err)
			}
			if ae.API != customerio.APITrack || ae.Operation != "batch" || ae.StatusCode != 400 || ae.Class != customerio.ClassPermanent {
				t.Errorf("item %d: %+v", pos[op.Name], ae)
			}
			want := map[int]string{3: "attributes: Attribute value too long", 7: "name cannot be blank"}[pos[op.Name]]
			if ae.Message != want {
				t.Errorf("item %d message %q, want %q", pos[op.Name], ae.Message, want)
			}
		default:
			if err != nil {
				t.Errorf("item %d: %v, want nil", pos[op.Name], err)
			}
		}
	}
	if st := b.Stats(); st.ItemErrors != 2 {
		t.Errorf("ItemErrors %d, want 2", st.ItemErrors)
	}
}

// TestUnattributedFailsEveryItemTransient: a failure that names no
// operation (an item error outside the batch, a permanent refusal of the
// whole request) acknowledges none and blames none: every operation gets a
// transient error matching ErrUnattributed, with the answer's status.
func TestUnattributedFailsEveryItemTransient(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func([]customerio.Operation) (customerio.BatchResult, error)
		status int
	}{
		{"index past the batch", func(ops []customerio.Operation) (customerio.BatchResult, error) {
			return customerio.BatchResult{Errors: []customerio.BatchItemError{{BatchIndex: 1, Reason: "invalid"}, {BatchIndex: len(ops), Reason: "invalid"}}}, nil
		}, 0},
		{"negative index", func([]customerio.Operation) (customerio.BatchResult, error) {
			return customerio.BatchResult{Errors: []customerio.BatchItemError{{BatchIndex: -1}}}, nil
		}, 0},
		{"whole request 413", func([]customerio.Operation) (customerio.BatchResult, error) {
			return customerio.BatchResult{}, &customerio.APIError{API: customerio.APITrack, Operation: "batch", StatusCode: 413, Class: customerio.ClassPermanent, Message: "too large"}
		}, 413},
		{"validation", func([]customerio.Operation) (customerio.BatchResult, error) {
			return customerio.BatchResult{}, &customerio.ValidationError{Field: "batch", Reason: "must be less than 500000 bytes encoded"}
		}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := batch.New((&recorder{answer: tt.answer}).send, batch.Config{MaxOps: 5, Linger: time.Hour})
			defer b.Close()
			for i, err := range doAll(b, names(5)) {
				var ae *customerio.APIError
				if !errors.Is(err, batch.ErrUnattributed) || !errors.As(err, &ae) || ae.Class != customerio.ClassTransient || ae.StatusCode != tt.status {
					t.Errorf("op %d: %v, want a transient %d matching ErrUnattributed", i, err, tt.status)
				}
			}
			if st := b.Stats(); st.Unattributed != 1 || st.ItemErrors != 0 {
				t.Errorf("stats %+v, want one unattributed request, no item errors", st)
			}
		})
	}
	// Through the client: a whole-request 400 is unattributed too; a 503
	// stays the transient error it was.
	srv := &cioServer{}
	srv.status.Store(400)
	b := batch.New(newClient(t, srv).Batch, batch.Config{})
	defer b.Close()
	for i, err := range doAll(b, names(4)) {
		var ae *customerio.APIError
		if !errors.Is(err, batch.ErrUnattributed) || !errors.As(err, &ae) || ae.StatusCode != 400 || customerio.ClassOf(err) != customerio.ClassTransient {
			t.Errorf("400: op %d: %v", i, err)
		}
	}
}

// cioServer answers /api/v2/batch like Customer.io: 207 naming the items
// whose event name starts with "bad", else 200 {}; it records body sizes.
type cioServer struct {
	mu     sync.Mutex
	sizes  []int
	status atomic.Int32 // when set, the whole-request status to answer
}

func (s *cioServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.sizes = append(s.sizes, len(raw))
	s.mu.Unlock()
	if r.URL.Path != "/api/v2/batch" {
		http.NotFound(w, r)
		return
	}
	if st := s.status.Load(); st != 0 {
		w.WriteHeader(int(st))
		fmt.Fprint(w, `{"errors":[{"reason":"unavailable","message":"try later"}]}`)
		return
	}
	var req struct {
		Batch []customerio.Operation `json:"batch"`
	}
	if err := json.Unmarshal(raw, &req); err != nil || len(req.Batch) == 0 {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"errors":[{"reason":"malformed","message":"bad json"}]}`)
		return
	}
	var errs []map[string]any
	for i, op := range req.Batch {
		if strings.HasPrefix(op.Name, "bad") {
			errs = append(errs, map[string]any{"batch_index": i, "reason": "invalid", "field": "name", "message": "is not allowed"})
		}
	}
	if len(errs) == 0 {
		fmt.Fprint(w, `{}`)
		return
	}
	w.WriteHeader(http.StatusMultiStatus)
	json.NewEncoder(w).Encode(map[string]any{"errors": errs})
}

func newClient(t *testing.T, h http.Handler) *customerio.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := customerio.New(customerio.Config{SiteID: "site", TrackAPIKey: "key", TrackURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClient207(t *testing.T) {
	srv := &cioServer{}
	b := batch.New(newClient(t, srv).Batch, batch.Config{})
	defer b.Close()
	ops := names(10)
	ops[3].Name, ops[7].Name = "bad-3", "bad-7"
	for i, err := range doAll(b, ops) {
		if i == 3 || i == 7 {
			var ae *customerio.APIError
			if !errors.As(err, &ae) || ae.Class != customerio.ClassPermanent || ae.StatusCode != 400 || ae.Message != "name: is not allowed" {
				t.Errorf("op %d: %#v, want permanent 400 \"name: is not allowed\"", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("op %d: %v", i, err)
		}
	}
}

func TestClientWholeRequest503(t *testing.T) {
	srv := &cioServer{}
	srv.status.Store(503)
	b := batch.New(newClient(t, srv).Batch, batch.Config{})
	defer b.Close()
	errs := doAll(b, names(20))
	for i, err := range errs {
		var ae *customerio.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 503 || customerio.ClassOf(err) != customerio.ClassTransient || errors.Is(err, batch.ErrUnattributed) {
			t.Errorf("op %d: %v, want transient 503 *APIError", i, err)
		}
	}
	if st := b.Stats(); st.RequestErrors == 0 || st.RequestErrors != st.Batches {
		t.Errorf("stats %+v", st)
	}
}

// bigOp is an event whose encoding is about n bytes.
func bigOp(name string, n int) customerio.Operation {
	op := event(name)
	op.Attributes = map[string]any{"blob": strings.Repeat("x", n)}
	return op
}

func TestByteLimitSplits(t *testing.T) {
	const limit = 450_000
	var mu sync.Mutex
	var sizes []int
	rec := &recorder{answer: func(ops []customerio.Operation) (customerio.BatchResult, error) {
		n := len(body(t, ops))
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
		return customerio.BatchResult{}, nil
	}}
	// ~100 KB operations: allowed per item here so that the request limit
	// is what splits.
	b := batch.New(rec.send, batch.Config{MaxItemBytes: 200_000, Linger: 20 * time.Millisecond,
		Validate: func(customerio.Operation) error { return nil }})
	defer b.Close()
	ops := make([]customerio.Operation, 20)
	for i := range ops {
		ops[i] = bigOp(fmt.Sprintf("ev-%d", i), 100_000)
	}
	for i, err := range doAll(b, ops) {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	total := 0
	for _, bt := range rec.sent() {
		total += len(bt)
		if len(bt) > 4 {
			t.Errorf("batch of %d ~100 KB ops", len(bt))
		}
	}
	for _, n := range sizes {
		if n > limit {
			t.Errorf("request body %d bytes, over %d", n, limit)
		}
	}
	if total != 20 || len(sizes) < 5 {
		t.Errorf("%d ops in %d requests, want 20 in at least 5", total, len(sizes))
	}
}

func TestByteLimitIsExact(t *testing.T) {
	ops := make([]customerio.Operation, 9)
	for i := range ops {
		ops[i] = bigOp(fmt.Sprintf("ev-%d", i), 1000) // same size each
	}
	three := len(body(t, ops[:3]))
	rec := &recorder{}
	// Exactly three ops fit: a fourth would need len(op)+1 more bytes.
	b := batch.New(rec.send, batch.Config{MaxBytes: three, Linger: time.Hour})
	defer b.Close()
	for i, err := range doAll(b, ops) {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	for _, bt := range rec.sent() {
		if n := len(body(t, bt)); len(bt) != 3 || n != three {
			t.Errorf("batch of %d ops, %d bytes; want 3 ops, %d bytes", len(bt), n, three)
		}
	}

	// One byte less and only two fit.
	rec2 := &recorder{}
	b2 := batch.New(rec2.send, batch.Config{MaxBytes: three - 1, Linger: 20 * time.Millisecond})
	defer b2.Close()
	doAll(b2, ops[:4])
	for _, bt := range rec2.sent() {
		if len(bt) != 2 {
			t.Errorf("batch of %d ops with MaxBytes one short of three, want 2", len(bt))
		}
	}
}

func TestClientRealBodiesUnderLimit(t *testing.T) {
	srv := &cioServer{}
	b := batch.New(newClient(t, srv).Batch, batch.Config{Linger: 20 * time.Millisecond})
	defer b.Close()
	ops := make([]customerio.Operation, 40)
	for i := range ops {
		op := event(fmt.Sprintf("ev-%d", i))
		op.Attributes = map[string]any{}
		for k := range 30 { // 30 values of 950 bytes: about 29 KB encoded, under the 32 KB item limit
			op.Attributes[fmt.Sprintf("a%d", k)] = strings.Repeat("y", 950)
		}
		ops[i] = op
	}
	for i, err := range doAll(b, ops) {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, n := range srv.sizes {
		if n > 450_000 {
			t.Errorf("request body %d bytes", n)
		}
	}
	if len(srv.sizes) < 3 {
		t.Errorf("40 × 29 KB in %d requests", len(srv.sizes))
	}
}

func TestMaxOpsSplits(t *testing.T) {
	rec := &recorder{}
	b := batch.New(rec.send, batch.Config{MaxOps: 7, Linger: 20 * time.Millisecond})
	defer b.Close()
	for i, err := range doAll(b, names(50)) {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	total := 0
	for _, bt := range rec.sent() {
		total += len(bt)
		if len(bt) > 7 {
			t.Errorf("batch of %d, MaxOps 7", len(bt))
		}
	}
	if total != 50 || len(rec.sent()) < 8 {
		t.Errorf("%d ops in %d batches", total, len(rec.sent()))
	}
}

func TestPanicInSend(t *testing.T) {
	var calls atomic.Int32
	send := func(ctx context.Context, ops []customerio.Operation) (customerio.BatchResult, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return customerio.BatchResult{}, nil
	}
	b := batch.New(send, batch.Config{MaxOps: 5, Linger: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer b.Close()
	for i, err := range doAll(b, names(5)) {
		if !errors.Is(err, batch.ErrSendPanicked) || customerio.ClassOf(err) != customerio.ClassTransient {
			t.Errorf("op %d: %v, want transient ErrSendPanicked", i, err)
		}
	}
	for i, err := range doAll(b, names(5)) {
		if err != nil {
			t.Errorf("after the panic, op %d: %v", i, err)
		}
	}
	if st := b.Stats(); st.Panics != 1 {
		t.Errorf("Panics %d", st.Panics)
	}
}

func TestCloseFlushes(t *testing.T) {
	rec := &recorder{}
	b := batch.New(rec.send, batch.Config{Linger: time.Hour})
	errs := make(chan error, 5)
	for _, op := range names(5) {
		go func() { errs <- b.Do(context.Background(), op) }()
	}
	// Wait until all five are queued behind the hour-long linger.
	for deadline := time.Now().Add(10 * time.Second); b.Stats().Accepted < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 5 operations queued", b.Stats().Accepted)
		}
		runtime.Gosched()
	}
	if n := len(rec.sent()); n != 0 {
		t.Fatalf("%d batches sent before Close", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := <-errs; err != nil && !errors.Is(err, batch.ErrClosed) {
			t.Errorf("Do: %v", err)
		}
	}
	if st := b.Stats(); st.Ops != 5 {
		t.Errorf("%d ops sent by Close, want 5", st.Ops)
	}
	if err := b.Do(context.Background(), event("late")); !errors.Is(err, batch.ErrClosed) {
		t.Errorf("Do after Close: %v", err)
	}
	b.Close() // twice is fine
}

func TestRejectedWithoutSending(t *testing.T) {
	rec := &recorder{}
	b := batch.New(rec.send, batch.Config{MaxBytes: 50_000, Linger: -1})
	defer b.Close()
	ctx := context.Background()
	cases := map[string]customerio.Operation{
		"over item limit": bigOp("big", 40_000),
		"invalid":         {Type: customerio.EntityPerson, Action: customerio.ActionEvent, Name: "no identifiers"},
	}
	for name, op := range cases {
		err := b.Do(ctx, op)
		var ve *customerio.ValidationError
		if !errors.As(err, &ve) || customerio.ClassOf(err) != customerio.ClassPermanent {
			t.Errorf("%s: %v, want *ValidationError", name, err)
		}
		// Only a size refusal says the operation could go another way.
		if tooLarge := name == "over item limit"; errors.Is(err, batch.ErrTooLarge) != tooLarge {
			t.Errorf("%s: errors.Is(ErrTooLarge) = %v", name, !tooLarge)
		}
	}
	// An op that alone exceeds MaxBytes.
	b2 := batch.New(rec.send, batch.Config{MaxBytes: 1000, Linger: -1})
	defer b2.Close()
	var ve *customerio.ValidationError
	if err := b2.Do(ctx, bigOp("big", 2000)); !errors.As(err, &ve) || !errors.Is(err, batch.ErrTooLarge) {
		t.Errorf("op over MaxBytes: %v", err)
	}
	if n := len(rec.sent()); n != 0 {
		t.Errorf("%d batches sent", n)
	}
	if err := b.Do(ctx, event("fine")); err != nil {
		t.Errorf("valid op after rejections: %v", err)
	}
}

func TestContextCancelledWhileWaiting(t *testing.T) {
	rec := &recorder{}
	b := batch.New(rec.send, batch.Config{Linger: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Do(ctx, event("gone")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v, want DeadlineExceeded", err)
	}
	b.Close()
	if n := len(rec.sent()); n != 0 {
		t.Errorf("withdrawn op was sent (%d batches)", n)
	}
}

func BenchmarkDo(b *testing.B) {
	for _, linger := range []time.Duration{5 * time.Millisecond, -1} {
		b.Run(fmt.Sprintf("linger=%v", linger), func(b *testing.B) {
			send := func(ctx context.Context, ops []customerio.Operation) (customerio.BatchResult, error) {
				time.Sleep(time.Millisecond) // a fast Customer.io
				return customerio.BatchResult{}, nil
			}
			bt := batch.New(send, batch.Config{Linger: linger})
			op := event("bench")
			b.ReportAllocs()
			b.SetParallelism(64) // many concurrent task handlers
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bt.Do(context.Background(), op); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			bt.Close()
			b.ReportMetric(bt.Stats().OpsPerBatch(), "ops/request")
		})
	}
}

// TestRawSendsTheClientsBytes: a NewRaw Batcher hands its send the
// operations' JSON, byte for byte what the client would encode, in the
// order they were submitted, each fate as with New.
func TestRawSendsTheClientsBytes(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	b := batch.NewRaw(func(_ context.Context, encoded []json.RawMessage) (customerio.BatchResult, error) {
		mu.Lock()
		defer mu.Unlock()
		var buf bytes.Buffer
		buf.WriteString(`{"batch":[`)
		for i, e := range encoded {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(e)
		}
		buf.WriteString(`]}`)
		bodies = append(bodies, buf.Bytes())
		return customerio.BatchResult{Errors: []customerio.BatchItemError{{BatchIndex: 2, Reason: "invalid", Message: "no"}}}, nil
	}, batch.Config{Linger: time.Hour, MaxOps: 5})
	defer b.Close()
	ops := names(5)
	ops[1].Attributes = map[string]any{"plan": "pro", "html": "<b>&</b>"}
	errs := b.DoAll(context.Background(), ops)
	for i, err := range errs {
		if (err != nil) != (i == 2) {
			t.Errorf("op %d: %v", i, err)
		}
	}
	if len(bodies) != 1 || !bytes.Equal(bodies[0], body(t, ops)) {
		t.Fatalf("sent %q, want one request %q", bodies, body(t, ops))
	}
}

// TestPrepared: operations encoded ahead with Prepare are sent by
// DoPrepared as DoAll sends them; one Prepare refused fails alone, with
// the refusal Do would give, and so does a zero Prepared.
func TestPrepared(t *testing.T) {
	rec := &recorder{}
	b := batch.New(rec.send, batch.Config{MaxItemBytes: 200})
	defer b.Close()
	a, big, bb := event("a"), event("big"), event("b")
	big.Attributes = map[string]any{"blob": strings.Repeat("x", 300)}
	ps := []batch.Prepared{b.Prepare(&a), b.Prepare(&big), {}, b.Prepare(&bb)}
	if !errors.Is(ps[1].Err(), batch.ErrTooLarge) || ps[0].Err() != nil {
		t.Fatalf("Prepare errors %v, %v; want nil, ErrTooLarge", ps[0].Err(), ps[1].Err())
	}
	errs := b.DoPrepared(context.Background(), ps)
	if errs[0] != nil || errs[3] != nil || !errors.Is(errs[1], batch.ErrTooLarge) || errs[2] == nil {
		t.Fatalf("DoPrepared = %v", errs)
	}
	var sent []string
	for _, bt := range rec.sent() {
		for _, op := range bt {
			sent = append(sent, op.Name)
		}
	}
	if strings.Join(sent, ",") != "a,b" {
		t.Errorf("sent %v, want a,b", sent)
	}
}
