package customerio

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// TestBatchReader: the body read from the parts, in reads of any size, is
// the joined body, and its size is known before it is read.
func TestBatchReader(t *testing.T) {
	for _, parts := range [][]json.RawMessage{
		nil,
		{json.RawMessage(`{"a":1}`)},
		{json.RawMessage(`{"a":1}`), json.RawMessage(`{}`), json.RawMessage(`{"b":"` + strings.Repeat("x", 5000) + `"}`)},
	} {
		want := joinBatch(parts)
		r := newBatchReader(parts)
		if r.size != int64(len(want)) {
			t.Errorf("size %d, want %d", r.size, len(want))
		}
		if err := iotest.TestReader(newBatchReader(parts), want); err != nil {
			t.Error(err)
		}
		got, err := io.ReadAll(iotest.OneByteReader(newBatchReader(parts)))
		if err != nil || string(got) != string(want) {
			t.Errorf("read one byte at a time: %q (%v), want %q", got, err, want)
		}
	}
}

// TestBatchEncodedStreamsAndScrubs: BatchEncoded sends the joined body
// with its Content-Length, and an error that echoes it names none of its
// values (the scrubber joins the parts itself, only then).
func TestBatchEncodedStreamsAndScrubs(t *testing.T) {
	c, srv := setup(t)
	var length int64
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
		length = r.ContentLength
		body := srv.last(t).Body
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"meta":{"error":"bad batch: `+strings.ReplaceAll(body, `"`, `'`)+`"}}`)
	})
	parts := []json.RawMessage{
		json.RawMessage(`{"type":"person","action":"identify","identifiers":{"id":"u-7654321"},"attributes":{"email":"someone@example.org"}}`),
		json.RawMessage(`{"type":"person","action":"delete","identifiers":{"id":"u-1111111"}}`),
	}
	_, err := c.BatchEncoded(context.Background(), parts)
	if err == nil {
		t.Fatal("no error for a 400")
	}
	if want, got := joinBatch(parts), srv.last(t).Body; got != string(want) || length != int64(len(want)) {
		t.Errorf("server read %q (Content-Length %d), want %q", got, length, want)
	}
	if !strings.Contains(err.Error(), "bad batch") {
		t.Fatalf("the error does not carry Customer.io's message: %v", err)
	}
	for _, f := range []string{"u-7654321", "u-1111111", "someone@example.org"} {
		if strings.Contains(err.Error(), f) {
			t.Errorf("error names %q: %v", f, err)
		}
	}
}
