package customerio_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/oklog/ulid/v2"
)

// newSandboxClient starts the sandbox and a client pointed at it.
func newSandboxClient(t *testing.T, timeout time.Duration) (*customerio.Client, *sandbox.Running) {
	t.Helper()
	sb := sandbox.NewTestServer(t, sandbox.Config{
		SiteID: "e2e-site", TrackAPIKey: "e2e-track-key", AppAPIKey: "e2e-app-key", PipelinesWriteKey: "e2e-write-key",
		AppRateLimit: -1, BroadcastInterval: -1,
	})
	c, err := customerio.New(customerio.Config{
		SiteID: "e2e-site", TrackAPIKey: "e2e-track-key", AppAPIKey: "e2e-app-key", PipelinesWriteKey: "e2e-write-key",
		TrackURL: sb.TrackURL(), AppURL: sb.AppURL(), PipelinesURL: sb.PipelinesURL(), PipelinesStrict: true,
		Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, sb
}

// TestSandboxE2E runs the client's operations against the sandbox and checks
// the state they leave there.
func TestSandboxE2E(t *testing.T) {
	c, sb := newSandboxClient(t, 5*time.Second)
	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	const tricky = "a+b@c.com/x y"
	must("identify", c.Identify(ctx, tricky, map[string]any{"plan": "pro"}))
	must("identify percent", c.Identify(ctx, "50%", map[string]any{"plan": "free"}))
	p, ok := sb.Person(tricky)
	if !ok || p.Attributes["plan"] != "pro" {
		t.Fatalf("person %q = %+v, %v", tricky, p, ok)
	}
	if p2, ok := sb.Person("50%"); !ok || p2.Attributes["plan"] != "free" {
		t.Fatalf("person 50%% = %+v, %v", p2, ok)
	}
	// The cio_ form addresses the same person.
	must("identify by cio_id", c.Identify(ctx, "cio_"+p.CioID, map[string]any{"seats": 3}))
	if p, _ = sb.Person(tricky); p.Attributes["seats"] == nil {
		t.Errorf("cio_ path did not update the person: %+v", p.Attributes)
	}

	id := ulid.Make().String()
	ev := customerio.Event{Name: "purchase", ID: id, Data: map[string]any{"total": 5}}
	must("track", c.Track(ctx, tricky, ev))
	must("track again (deduplicated)", c.Track(ctx, tricky, ev))
	must("page", c.Track(ctx, tricky, customerio.Event{Name: "/pricing", Type: customerio.EventTypePage}))
	if evs := sb.Events(tricky); len(evs) != 2 {
		t.Errorf("events = %d, want 2 (purchase once, page)", len(evs))
	}
	must("anonymous", c.TrackAnonymous(ctx, customerio.AnonymousEvent{AnonymousID: "anon-1", Name: "viewed"}))
	must("invite", c.TrackAnonymous(ctx, customerio.AnonymousEvent{Name: "invite", Data: map[string]any{"recipient": "friend@example.com"}}))
	must("add device", c.AddDevice(ctx, tricky, customerio.Device{ID: "tok/1", Platform: "ios"}))
	if p, _ = sb.Person(tricky); len(p.Devices) != 1 {
		t.Errorf("devices = %+v", p.Devices)
	}
	must("delete device", c.DeleteDevice(ctx, tricky, "tok/1"))
	if p, _ = sb.Person(tricky); len(p.Devices) != 0 {
		t.Errorf("devices after delete = %+v", p.Devices)
	}

	ids := make([]string, 2500)
	for i := range ids {
		ids[i] = "member-" + ulid.Make().String()
		must("identify member", c.Identify(ctx, ids[i], nil))
	}
	must("segment add", c.AddToSegment(ctx, 3, customerio.IDTypeID, ids))
	if m, ok := sb.SegmentMembers(3); !ok || len(m) != 2500 {
		t.Errorf("segment members = %d, %v", len(m), ok)
	}
	must("segment remove", c.RemoveFromSegment(ctx, 3, "", ids[:10]))
	if m, _ := sb.SegmentMembers(3); len(m) != 2490 {
		t.Errorf("segment members after remove = %d", len(m))
	}
	err := c.AddToSegment(ctx, 9999, "", ids[:1])
	if ae := new(customerio.APIError); !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Class != customerio.ClassPermanent {
		t.Errorf("unknown segment: %v", err)
	}

	must("merge", c.MergeCustomers(ctx, customerio.Identifiers{ID: "50%"}, customerio.Identifiers{ID: ids[0]}))
	must("form", c.SubmitForm(ctx, "signup", map[string]string{"email": "form@example.com", "name": "F"}))
	must("suppress", c.Suppress(ctx, ids[1]))
	must("unsuppress", c.Unsuppress(ctx, ids[1]))
	must("delete", c.Delete(ctx, ids[2]))

	// Track v2.
	must("entity", c.Entity(ctx, customerio.Operation{Type: customerio.EntityObject, Action: customerio.ActionIdentify,
		Identifiers: &customerio.Identifiers{ObjectTypeID: "1", ObjectID: "acme"}, Attributes: map[string]any{"name": "Acme"}}))
	if o, ok := sb.Object("1", "acme"); !ok || o.Attributes["name"] != "Acme" {
		t.Errorf("object = %+v, %v", o, ok)
	}
	res, err := c.Batch(ctx, []customerio.Operation{
		{Type: customerio.EntityPerson, Action: customerio.ActionIdentify, Identifiers: &customerio.Identifiers{ID: "v2-person"}, Attributes: map[string]any{"a": 1}},
		{Type: customerio.EntityPerson, Action: customerio.ActionAddRelationships, Identifiers: &customerio.Identifiers{ID: "v2-person"},
			Relationships: []customerio.Relationship{{Identifiers: customerio.Identifiers{ObjectTypeID: "1", ObjectID: "acme"}}}},
	})
	must("batch", err)
	if res.ItemError(0) != nil || res.ItemError(1) != nil {
		t.Errorf("batch item errors: %+v", res.Errors)
	}

	// App API.
	req := &customerio.SendEmailRequest{To: "jane@example.com", Subject: "s", Body: "b"}
	req.TransactionalMessageID = "3"
	req.Identifiers = &customerio.Identifiers{ID: "mailer-1"}
	resp, err := c.SendEmail(ctx, req)
	must("send email", err)
	if resp.DeliveryID == "" || resp.QueuedAt == 0 {
		t.Errorf("send response = %+v", resp)
	}
	opts := customerio.SendOptions{TransactionalMessageID: "3", Identifiers: &customerio.Identifiers{ID: "mailer-1"}}
	_, err = c.SendPush(ctx, &customerio.SendPushRequest{SendOptions: opts})
	must("push", err)
	_, err = c.SendSMS(ctx, &customerio.SendSMSRequest{SendOptions: opts, To: "+15555550100"})
	must("sms", err)
	_, err = c.SendInApp(ctx, &customerio.SendInAppRequest{SendOptions: opts})
	must("in-app", err)
	_, err = c.SendInbox(ctx, &customerio.SendInboxRequest{SendOptions: opts})
	must("inbox", err)
	_, err = c.SendWhatsApp(ctx, &customerio.SendWhatsAppRequest{SendOptions: opts, To: "+15555550100"})
	must("whatsapp", err)
	if n := len(sb.Deliveries()); n != 6 {
		t.Errorf("deliveries = %d, want 6", n)
	}
	trig, err := c.TriggerBroadcast(ctx, 2, &customerio.TriggerBroadcastRequest{IDs: []string{"mailer-1"}, IDIgnoreMissing: true})
	must("trigger", err)
	st, err := c.TriggerStatus(ctx, 2, trig.ID)
	must("trigger status", err)
	if st.ID != trig.ID || st.BroadcastID != 2 {
		t.Errorf("status = %+v", st)
	}
	_, err = c.TriggerErrors(ctx, 2, trig.ID, 0, 10)
	must("trigger errors", err)

	// Pipelines, strict mode.
	must("cdp identify", c.Pipelines(ctx, customerio.CallIdentify, customerio.PipelinesMessage{UserID: "cdp-1", Traits: map[string]any{"plan": "x"}}))
	must("cdp track", c.Pipelines(ctx, customerio.CallTrack, customerio.PipelinesMessage{UserID: "cdp-1", Event: "Clicked"}))
	must("cdp batch", c.PipelinesBatch(ctx, []customerio.PipelinesMessage{
		{Type: customerio.CallPage, UserID: "cdp-1", Name: "Home"},
		{Type: customerio.CallGroup, UserID: "cdp-1", GroupID: "acme"},
		{Type: customerio.CallAlias, UserID: "cdp-1", PreviousID: "anon-9"},
	}))
	if n := len(sb.CDPMessages()); n < 5 {
		t.Errorf("cdp messages = %d, want 5", n)
	}
}

// TestSandboxFaults: the sandbox's injected faults come back classified.
func TestSandboxFaults(t *testing.T) {
	c, sb := newSandboxClient(t, 300*time.Millisecond)
	ctx := context.Background()
	identify := func() error { return c.Identify(ctx, "fault-person-1", map[string]any{"a": 1}) }

	sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 429, RetryAfter: "3", Times: 1})
	err := identify()
	var ae *customerio.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Class != customerio.ClassTransient || ae.RetryAfter != 3*time.Second {
		t.Errorf("429: %v", err)
	}
	sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, Times: 1})
	if err := identify(); customerio.ClassOf(err) != customerio.ClassTransient {
		t.Errorf("503: %v", err)
	}
	sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Reset: true, Times: 1})
	if err := identify(); customerio.ClassOf(err) != customerio.ClassTransient || strings.Contains(err.Error(), "fault-person-1") {
		t.Errorf("reset: %v", err)
	}
	sb.SetFault(sandbox.GroupTrack, sandbox.Fault{Hang: true, Times: 1})
	if err := identify(); customerio.ClassOf(err) != customerio.ClassTransient || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}
	sb.ClearFaults()
	if err := identify(); err != nil {
		t.Errorf("after faults: %v", err)
	}

	bad, _ := customerio.New(customerio.Config{SiteID: "e2e-site", TrackAPIKey: "wrong", TrackURL: sb.TrackURL()})
	if err := bad.Delete(ctx, "x"); customerio.ClassOf(err) != customerio.ClassAuth {
		t.Errorf("wrong key: %v", err)
	}
}

// TestSandboxPipelinesExtraFields: a Segment message decoded into a
// PipelinesMessage reaches the sandbox with the fields the struct does not
// name (sentAt, channel, ...).
func TestSandboxPipelinesExtraFields(t *testing.T) {
	c, sb := newSandboxClient(t, 5*time.Second)
	var m customerio.PipelinesMessage
	in := `{"userId":"cdp-x","event":"Signed Up","messageId":"` + ulid.Make().String() + `",` +
		`"sentAt":"2026-01-02T03:04:06Z","channel":"server","context":{"ip":"1.2.3.4"}}`
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if err := c.Pipelines(context.Background(), customerio.CallTrack, m); err != nil {
		t.Fatal(err)
	}
	msgs := sb.CDPMessages()
	if len(msgs) != 1 {
		t.Fatalf("cdp messages = %d, want 1", len(msgs))
	}
	got := msgs[0]
	if got.Problem != "" || got.Body["sentAt"] != "2026-01-02T03:04:06Z" || got.Body["channel"] != "server" || got.Body["event"] != "Signed Up" {
		t.Errorf("sandbox got %+v", got)
	}
}

// TestSandboxAppRateLimitE2E: against the sandbox's default App API limit
// (10 requests per second per key), the 11th call within one second is a
// transient *APIError with status 429 and Retry-After; the sandbox's clock
// is frozen so the test does not depend on how fast the machine is.
func TestSandboxAppRateLimitE2E(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sb := sandbox.NewTestServer(t, sandbox.Config{Now: func() time.Time { return now }})
	c, err := customerio.New(customerio.Config{AppAPIKey: sandbox.DefaultAppAPIKey, AppURL: sb.AppURL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 1; i <= 10; i++ {
		_, err := c.TriggerStatus(ctx, 1, 999)
		var ae *customerio.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 404 {
			t.Fatalf("call %d: %v, want a 404 for an unknown trigger", i, err)
		}
	}
	_, err = c.TriggerStatus(ctx, 1, 999)
	var ae *customerio.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Class != customerio.ClassTransient || ae.RetryAfter < time.Second {
		t.Fatalf("11th call: %v, want a transient 429 with Retry-After ≥ 1s", err)
	}
	// Transactional sends have their own budget.
	if _, err := c.SendEmail(ctx, &customerio.SendEmailRequest{To: "a@example.com", Subject: "s", Body: "b"}); err != nil {
		t.Fatalf("send after the App API limit: %v", err)
	}
}

// TestSandboxServiceAccountE2E: a service-account token (sa_live_...) sends
// with X-Workspace-Id; the sandbox accepts it for its workspace only, and a
// client without the workspace id is refused at New.
func TestSandboxServiceAccountE2E(t *testing.T) {
	sb := sandbox.NewTestServer(t)
	ctx := context.Background()
	send := &customerio.SendEmailRequest{To: "a@example.com", Subject: "s", Body: "b"}
	c, err := customerio.New(customerio.Config{AppAPIKey: sandbox.DefaultServiceToken, AppWorkspaceID: "1", AppURL: sb.AppURL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendEmail(ctx, send); err != nil {
		t.Fatalf("send with the service token: %v", err)
	}
	reqs := sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupApp})
	if len(reqs) != 1 || reqs[0].Header.Get("X-Workspace-Id") != "1" {
		t.Fatalf("recorded %+v, want one send carrying X-Workspace-Id: 1", reqs)
	}
	other, err := customerio.New(customerio.Config{AppAPIKey: sandbox.DefaultServiceToken, AppWorkspaceID: "2", AppURL: sb.AppURL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.SendEmail(ctx, send); customerio.ClassOf(err) != customerio.ClassAuth {
		t.Fatalf("send for another workspace: %v, want an auth error", err)
	}
	_, err = customerio.New(customerio.Config{AppAPIKey: sandbox.DefaultServiceToken})
	if err == nil || !strings.Contains(err.Error(), "AppWorkspaceID") || strings.Contains(err.Error(), sandbox.DefaultServiceToken) {
		t.Fatalf("New without AppWorkspaceID: %v", err)
	}
}

// The credentials reads (Region on Track, ListTransactional on App) against
// the sandbox: their answers, and a wrong or missing key classified as auth.
func TestSandboxCredentialReads(t *testing.T) {
	c, sb := newSandboxClient(t, 5*time.Second)
	ctx := context.Background()
	reg, err := c.Region(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Region != "us" || reg.URL != "https://track.customer.io" || reg.EnvironmentID != int64(sb.Config().WorkspaceID) {
		t.Errorf("Region = %+v", reg)
	}
	msgs, err := c.ListTransactional(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].ID != 1 || msgs[0].Name != "password_reset" || msgs[1].Name != "order_confirmation" || msgs[0].CreatedAt == 0 || !msgs[0].LinkTracking {
		t.Errorf("ListTransactional = %+v", msgs)
	}
	if n := len(sb.Requests(sandbox.RequestFilter{Group: sandbox.GroupApp, PathContains: "/v1/transactional"})); n != 1 {
		t.Errorf("%d list requests, want 1", n)
	}

	bad, err := customerio.New(customerio.Config{
		SiteID: "e2e-site", TrackAPIKey: "wrong-track-key", AppAPIKey: "wrong-app-key",
		TrackURL: sb.TrackURL(), AppURL: sb.AppURL(), PipelinesURL: sb.PipelinesURL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"region":             func() error { _, err := bad.Region(ctx); return err },
		"list_transactional": func() error { _, err := bad.ListTransactional(ctx); return err },
	} {
		err := call()
		var ae *customerio.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Class != customerio.ClassAuth || customerio.ClassOf(err) != customerio.ClassAuth {
			t.Errorf("%s with a wrong key: %v, want a 401 auth error", name, err)
		}
		if strings.Contains(err.Error(), "wrong-") {
			t.Errorf("%s: the error text holds the key: %v", name, err)
		}
	}

	none, err := customerio.New(customerio.Config{TrackURL: sb.TrackURL(), AppURL: sb.AppURL()})
	if err != nil {
		t.Fatal(err)
	}
	before := sb.Stats().Total
	if _, err := none.ListTransactional(ctx); !errors.Is(err, customerio.ErrMissingCredentials) {
		t.Errorf("without a key: %v", err)
	}
	if _, err := none.Region(ctx); !errors.Is(err, customerio.ErrMissingCredentials) {
		t.Errorf("without a key: %v", err)
	}
	if sb.Stats().Total != before {
		t.Error("a call without credentials made a request")
	}
	if none.HasCredentials(customerio.APIApp) || !c.HasCredentials(customerio.APIApp) || !c.HasCredentials(customerio.APITrack) || !c.HasCredentials(customerio.APIPipelines) {
		t.Error("HasCredentials is wrong")
	}
}
