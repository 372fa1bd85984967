package customerio

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func boolp(b bool) *bool { return &b }

// TestEndpoints checks, for every endpoint: method, path on the wire (with
// escaping), query, the exact Authorization header, the exact body (and
// Content-Type only with a body), the User-Agent and the parsed response.
func TestEndpoints(t *testing.T) {
	const (
		track = wantTrackAuth
		app   = wantAppAuth
		cdp   = wantCDPAuth
	)
	tests := []struct {
		name     string
		status   int
		resp     string
		call     func(ctx context.Context, c *Client) (any, error)
		method   string
		path     string // escaped, as on the wire
		decoded  string // decoded path, when it matters
		query    string
		auth     string
		body     string
		want     any // expected result, when the call returns one
		strictOn bool
	}{
		{name: "identify escaped id", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Identify(ctx, "a+b@c.com/x y", map[string]any{"created_at": 1700000000, "plan": "pro"})
		}, method: "PUT", path: "/api/v1/customers/a%2Bb@c.com%2Fx%20y", decoded: "/api/v1/customers/a+b@c.com/x y",
			auth: track, body: `{"created_at":1700000000,"plan":"pro"}`},
		{name: "identify percent id", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Identify(ctx, "50%", nil)
		}, method: "PUT", path: "/api/v1/customers/50%25", decoded: "/api/v1/customers/50%", auth: track, body: `{}`},
		{name: "identify cio id", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Identify(ctx, "cio_abc", map[string]any{"email": "new@example.com"})
		}, method: "PUT", path: "/api/v1/customers/cio_abc", auth: track, body: `{"email":"new@example.com"}`},
		{name: "delete", call: func(ctx context.Context, c *Client) (any, error) { return nil, c.Delete(ctx, "a+b@c.com/x y") },
			method: "DELETE", path: "/api/v1/customers/a%2Bb@c.com%2Fx%20y", auth: track},
		{name: "suppress", call: func(ctx context.Context, c *Client) (any, error) { return nil, c.Suppress(ctx, "50%") },
			method: "POST", path: "/api/v1/customers/50%25/suppress", auth: track},
		{name: "unsuppress", call: func(ctx context.Context, c *Client) (any, error) { return nil, c.Unsuppress(ctx, "cio_abc") },
			method: "POST", path: "/api/v1/customers/cio_abc/unsuppress", auth: track},
		{name: "track event", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Track(ctx, "u1", Event{Name: "purchase", ID: testULID, Timestamp: 1700000000, Data: map[string]any{"price": 9.5, "html": "<b>&</b>"}})
		}, method: "POST", path: "/api/v1/customers/u1/events", auth: track,
			body: `{"name":"purchase","id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","timestamp":1700000000,"data":{"html":"<b>&</b>","price":9.5}}`},
		{name: "track page", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Track(ctx, "u1", Event{Name: "/pricing", Type: EventTypePage})
		}, method: "POST", path: "/api/v1/customers/u1/events", auth: track, body: `{"name":"/pricing","type":"page"}`},
		{name: "track screen", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Track(ctx, "u1", Event{Name: "Home", Type: EventTypeScreen})
		}, method: "POST", path: "/api/v1/customers/u1/events", auth: track, body: `{"name":"Home","type":"screen"}`},
		{name: "anonymous event", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.TrackAnonymous(ctx, AnonymousEvent{AnonymousID: "anon-1", Name: "viewed", ID: testULID})
		}, method: "POST", path: "/api/v1/events", auth: track, body: `{"anonymous_id":"anon-1","name":"viewed","id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}`},
		{name: "invite event", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.TrackAnonymous(ctx, AnonymousEvent{Name: "invite", Data: map[string]any{"recipient": "a@example.com"}})
		}, method: "POST", path: "/api/v1/events", auth: track, body: `{"name":"invite","data":{"recipient":"a@example.com"}}`},
		{name: "add device", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.AddDevice(ctx, "u1", Device{ID: "tok", Platform: "ios", LastUsed: 1700000000, Attributes: map[string]string{"app_version": "1.0"}})
		}, method: "PUT", path: "/api/v1/customers/u1/devices", auth: track,
			body: `{"device":{"id":"tok","platform":"ios","last_used":1700000000,"attributes":{"app_version":"1.0"}}}`},
		{name: "delete device", call: func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteDevice(ctx, "u1", "tok/1+2") },
			method: "DELETE", path: "/api/v1/customers/u1/devices/tok%2F1%2B2", decoded: "/api/v1/customers/u1/devices/tok/1+2", auth: track},
		{name: "merge", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.MergeCustomers(ctx, Identifiers{ID: "u1"}, Identifiers{Email: "b@example.com"})
		}, method: "POST", path: "/api/v1/merge_customers", auth: track, body: `{"primary":{"id":"u1"},"secondary":{"email":"b@example.com"}}`},
		{name: "segment add", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.AddToSegment(ctx, 7, IDTypeID, []string{"u1", "u2"})
		}, method: "POST", path: "/api/v1/segments/7/add_customers", auth: track, body: `{"ids":["u1","u2"]}`},
		{name: "segment remove by email", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.RemoveFromSegment(ctx, 7, IDTypeEmail, []string{"a@example.com"})
		}, method: "POST", path: "/api/v1/segments/7/remove_customers", query: "id_type=email", auth: track, body: `{"ids":["a@example.com"]}`},
		{name: "form submit 204", status: 204, resp: "", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.SubmitForm(ctx, "contact us", map[string]string{"email": "a@example.com", "name": "A"})
		}, method: "POST", path: "/api/v1/forms/contact%20us/submit", auth: track, body: `{"data":{"email":"a@example.com","name":"A"}}`},
		{name: "v2 entity", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Entity(ctx, Operation{Type: EntityObject, Action: ActionIdentify, Identifiers: &Identifiers{ObjectTypeID: "1", ObjectID: "acme"},
				Attributes: map[string]any{"name": "Acme"}, Relationships: []Relationship{{Identifiers: Identifiers{ID: "u1"}, RelationshipAttributes: map[string]any{"role": "admin"}}}})
		}, method: "POST", path: "/api/v2/entity", auth: track,
			body: `{"type":"object","action":"identify","identifiers":{"object_type_id":"1","object_id":"acme"},"attributes":{"name":"Acme"},"cio_relationships":[{"identifiers":{"id":"u1"},"relationship_attributes":{"role":"admin"}}]}`},
		{name: "v2 batch 200", call: func(ctx context.Context, c *Client) (any, error) {
			return c.Batch(ctx, []Operation{
				{Type: EntityPerson, Action: ActionEvent, Identifiers: &Identifiers{Email: "a@example.com"}, Name: "signed_up", ID: testULID},
				{Type: EntityDelivery, Action: ActionEvent, Identifiers: &Identifiers{ID: "dlv1"}, Name: "opened", Attributes: map[string]any{"device_token": "tok"}},
			})
		}, method: "POST", path: "/api/v2/batch", auth: track,
			body: `{"batch":[{"type":"person","action":"event","identifiers":{"email":"a@example.com"},"name":"signed_up","id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"},{"type":"delivery","action":"event","identifiers":{"id":"dlv1"},"name":"opened","attributes":{"device_token":"tok"}}]}`,
			want: BatchResult{}},
		{name: "send email", resp: `{"delivery_id":"dlv_1","queued_at":1700000001}`, call: func(ctx context.Context, c *Client) (any, error) {
			r := &SendEmailRequest{To: "a@example.com", Subject: "Hi", Attachments: map[string]string{"a.txt": "aGk="}, Tracked: boolp(false)}
			r.TransactionalMessageID = "3"
			r.Identifiers = &Identifiers{ID: "u1"}
			r.MessageData = map[string]any{"code": "123456"}
			return c.SendEmail(ctx, r)
		}, method: "POST", path: "/v1/send/email", auth: app,
			body: `{"transactional_message_id":3,"identifiers":{"id":"u1"},"message_data":{"code":"123456"},"to":"a@example.com","subject":"Hi","attachments":{"a.txt":"aGk="},"tracked":false}`,
			want: &SendResponse{DeliveryID: "dlv_1", QueuedAt: 1700000001}},
		{name: "send push", resp: `{"delivery_id":"dlv_2","queued_at":1700000002,"send_at":1700009999}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.SendPush(ctx, &SendPushRequest{SendOptions: SendOptions{TransactionalMessageID: "welcome", Identifiers: &Identifiers{CioID: "abc"}},
				Title: "T", CustomDevice: &PushDevice{Token: "tok", Platform: "android"}})
		}, method: "POST", path: "/v1/send/push", auth: app,
			body: `{"transactional_message_id":"welcome","identifiers":{"cio_id":"abc"},"title":"T","custom_device":{"token":"tok","platform":"android"}}`,
			want: &SendResponse{DeliveryID: "dlv_2", QueuedAt: 1700000002, SendAt: 1700009999}},
		{name: "send sms", resp: `{"delivery_id":"d3","queued_at":1}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.SendSMS(ctx, &SendSMSRequest{SendOptions: SendOptions{TransactionalMessageID: "4", Identifiers: person("u1")}, To: "+15555550100"})
		}, method: "POST", path: "/v1/send/sms", auth: app, body: `{"transactional_message_id":4,"identifiers":{"id":"u1"},"to":"+15555550100"}`,
			want: &SendResponse{DeliveryID: "d3", QueuedAt: 1}},
		{name: "send in-app", resp: `{"delivery_id":"d4","queued_at":2}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.SendInApp(ctx, &SendInAppRequest{SendOptions: SendOptions{TransactionalMessageID: "5", Identifiers: person("u1")}})
		}, method: "POST", path: "/v1/send/in_app", auth: app, body: `{"transactional_message_id":5,"identifiers":{"id":"u1"}}`,
			want: &SendResponse{DeliveryID: "d4", QueuedAt: 2}},
		{name: "send inbox", resp: `{"delivery_id":"d5","queued_at":3}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.SendInbox(ctx, &SendInboxRequest{SendOptions: SendOptions{TransactionalMessageID: "6", Identifiers: person("u1")}})
		}, method: "POST", path: "/v1/send/inbox_message", auth: app, body: `{"transactional_message_id":6,"identifiers":{"id":"u1"}}`,
			want: &SendResponse{DeliveryID: "d5", QueuedAt: 3}},
		{name: "send whatsapp", resp: `{"delivery_id":"d6","queued_at":4}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.SendWhatsApp(ctx, &SendWhatsAppRequest{SendOptions: SendOptions{TransactionalMessageID: "7", Identifiers: person("u1")}, To: "+15555550100"})
		}, method: "POST", path: "/v1/send/whatsapp", auth: app, body: `{"transactional_message_id":7,"identifiers":{"id":"u1"},"to":"+15555550100"}`,
			want: &SendResponse{DeliveryID: "d6", QueuedAt: 4}},
		{name: "broadcast default nil", resp: `{"id":11}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerBroadcast(ctx, 5, nil)
		}, method: "POST", path: "/v1/campaigns/5/triggers", auth: app, body: `{}`, want: &BroadcastTrigger{ID: 11}},
		{name: "broadcast default data", resp: `{"id":12}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerBroadcast(ctx, 5, &TriggerBroadcastRequest{Data: map[string]any{"sale": "50%"}})
		}, method: "POST", path: "/v1/campaigns/5/triggers", auth: app, body: `{"data":{"sale":"50%"}}`, want: &BroadcastTrigger{ID: 12}},
		{name: "broadcast filter", resp: `{"id":13}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerBroadcast(ctx, 5, &TriggerBroadcastRequest{Recipients: &RecipientFilter{And: []RecipientFilter{
				{Segment: &SegmentRef{ID: 3}}, {Attribute: &AttributeFilter{Field: "plan", Operator: "eq", Value: "pro"}}}}})
		}, method: "POST", path: "/v1/campaigns/5/triggers", auth: app,
			body: `{"recipients":{"and":[{"segment":{"id":3}},{"attribute":{"field":"plan","operator":"eq","value":"pro"}}]}}`, want: &BroadcastTrigger{ID: 13}},
		{name: "broadcast emails", resp: `{"id":14}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerBroadcast(ctx, 5, &TriggerBroadcastRequest{Emails: []string{"a@example.com"}, EmailIgnoreMissing: true, EmailAddDuplicates: true})
		}, method: "POST", path: "/v1/campaigns/5/triggers", auth: app,
			body: `{"emails":["a@example.com"],"email_ignore_missing":true,"email_add_duplicates":true}`, want: &BroadcastTrigger{ID: 14}},
		{name: "broadcast ids", resp: `{"id":15}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerBroadcast(ctx, 5, &TriggerBroadcastRequest{IDs: []string{"u1", "u2"}, IDIgnoreMissing: true})
		}, method: "POST", path: "/v1/campaigns/5/triggers", auth: app, body: `{"ids":["u1","u2"],"id_ignore_missing":true}`, want: &BroadcastTrigger{ID: 15}},
		{name: "broadcast per_user_data", resp: `{"id":16}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerBroadcast(ctx, 5, &TriggerBroadcastRequest{PerUserData: []PerUserData{{ID: "u1", Data: map[string]any{"n": 1}}, {Email: "b@example.com"}},
				IDIgnoreMissing: true, EmailIgnoreMissing: true})
		}, method: "POST", path: "/v1/campaigns/5/triggers", auth: app,
			body: `{"per_user_data":[{"id":"u1","data":{"n":1}},{"email":"b@example.com"}],"id_ignore_missing":true,"email_ignore_missing":true}`, want: &BroadcastTrigger{ID: 16}},
		{name: "broadcast data_file_url", resp: `{"id":17}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerBroadcast(ctx, 5, &TriggerBroadcastRequest{DataFileURL: "https://files.example.com/a.jsonl", EmailAddDuplicates: true})
		}, method: "POST", path: "/v1/campaigns/5/triggers", auth: app,
			body: `{"data_file_url":"https://files.example.com/a.jsonl","email_add_duplicates":true}`, want: &BroadcastTrigger{ID: 17}},
		{name: "trigger status", resp: `{"id":17,"broadcast_id":5,"created_at":1700000000,"processed_at":1700000060}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerStatus(ctx, 5, 17)
		}, method: "GET", path: "/v1/campaigns/5/triggers/17", auth: app,
			want: &TriggerStatus{ID: 17, BroadcastID: 5, CreatedAt: 1700000000, ProcessedAt: 1700000060}},
		{name: "region", resp: `{"url":"https://track-eu.customer.io","region":"eu","environment_id":3}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.Region(ctx)
		}, method: "GET", path: "/api/v1/accounts/region", auth: track,
			want: &AccountRegion{URL: "https://track-eu.customer.io", Region: "eu", EnvironmentID: 3}},
		{name: "list transactional", resp: `{"messages":[{"id":2,"name":"password reset","description":"resets","send_to_unsubscribed":true,"link_tracking":true,"open_tracking":true,"hide_message_body":true,"queue_drafts":true,"created_at":1552341937,"updated_at":1552341938}]}`,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListTransactional(ctx) },
			method: "GET", path: "/v1/transactional", auth: app,
			want: []TransactionalMessage{{ID: 2, Name: "password reset", Description: "resets", SendToUnsubscribed: true, LinkTracking: true, OpenTracking: true,
				HideMessageBody: true, QueueDrafts: true, CreatedAt: 1552341937, UpdatedAt: 1552341938}}},
		{name: "list transactional empty", resp: `{}`, call: func(ctx context.Context, c *Client) (any, error) { return c.ListTransactional(ctx) },
			method: "GET", path: "/v1/transactional", auth: app, want: []TransactionalMessage{}},
		{name: "get message", resp: `{"message":{"id":"ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=","deduplicate_id":"ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=:1619137768","msg_template_id":43,"customer_id":null,"recipient":"person@example.com","metrics":{"delivered":1619137768,"sent":1619137768},"created":1619137767,"failure_message":null,"campaign_id":23,"broadcast_id":null,"type":"email","forgotten":false}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Message(ctx, "ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=")
			},
			method: "GET", path: "/v1/messages/ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=", auth: app,
			want: &Message{ID: "ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=", Type: "email", Metrics: map[string]int64{"delivered": 1619137768, "sent": 1619137768},
				Created: 1619137767, Recipient: "person@example.com"}},
		{name: "get message failed", resp: `{"message":{"id":"d1","metrics":{"failed":1619137768},"failure_message":"Missing liquid variable","type":"email"}}`,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Message(ctx, "d1") },
			method: "GET", path: "/v1/messages/d1", auth: app,
			want: &Message{ID: "d1", Type: "email", Metrics: map[string]int64{"failed": 1619137768}, FailureMessage: "Missing liquid variable"}},
		{name: "trigger errors", resp: `{"errors":["line 2: unknown id","line 9: bad json"],"next":10}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerErrors(ctx, 5, 17, 2, 50)
		}, method: "GET", path: "/v1/campaigns/5/triggers/17/errors", query: "limit=50&start=2", auth: app,
			want: &TriggerErrors{Errors: []string{"line 2: unknown id", "line 9: bad json"}, Next: 10}},
		{name: "trigger errors first page", resp: `{"errors":[]}`, call: func(ctx context.Context, c *Client) (any, error) {
			return c.TriggerErrors(ctx, 5, 17, 0, 0)
		}, method: "GET", path: "/v1/campaigns/5/triggers/17/errors", auth: app, want: &TriggerErrors{Errors: []string{}}},
		{name: "cdp identify", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Pipelines(ctx, CallIdentify, PipelinesMessage{UserID: "u1", MessageID: "m1", Traits: map[string]any{"email": "a@example.com"}})
		}, method: "POST", path: "/v1/identify", auth: cdp, body: `{"userId":"u1","messageId":"m1","traits":{"email":"a@example.com"}}`},
		{name: "cdp track strict", strictOn: true, call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Pipelines(ctx, CallTrack, PipelinesMessage{UserID: "u1", Event: "Order Completed", Properties: map[string]any{"total": 3}})
		}, method: "POST", path: "/v1/track", auth: cdp, body: `{"userId":"u1","event":"Order Completed","properties":{"total":3}}`},
		{name: "cdp page", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Pipelines(ctx, CallPage, PipelinesMessage{AnonymousID: "a1", Name: "Pricing"})
		}, method: "POST", path: "/v1/page", auth: cdp, body: `{"anonymousId":"a1","name":"Pricing"}`},
		{name: "cdp screen", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Pipelines(ctx, CallScreen, PipelinesMessage{UserID: "u1", Name: "Home"})
		}, method: "POST", path: "/v1/screen", auth: cdp, body: `{"userId":"u1","name":"Home"}`},
		{name: "cdp group", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Pipelines(ctx, CallGroup, PipelinesMessage{UserID: "u1", GroupID: "acme", Traits: map[string]any{"objectTypeId": "1"}})
		}, method: "POST", path: "/v1/group", auth: cdp, body: `{"userId":"u1","traits":{"objectTypeId":"1"},"groupId":"acme"}`},
		{name: "cdp alias", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Pipelines(ctx, CallAlias, PipelinesMessage{UserID: "u1", PreviousID: "anon"})
		}, method: "POST", path: "/v1/alias", auth: cdp, body: `{"userId":"u1","previousId":"anon"}`},
		{name: "cdp batch", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.PipelinesBatch(ctx, []PipelinesMessage{{Type: CallIdentify, UserID: "u1"}, {Type: CallTrack, UserID: "u1", Event: "e"}})
		}, method: "POST", path: "/v1/batch", auth: cdp, body: `{"batch":[{"type":"identify","userId":"u1"},{"type":"track","userId":"u1","event":"e"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			status := tt.status
			if status == 0 {
				status = 200
			}
			resp := tt.resp
			if resp == "" && status == 200 {
				resp = "{}"
			}
			srv.setHandler(respond(status, resp))
			cfg := testConfig(srv)
			cfg.PipelinesStrict = tt.strictOn
			cfg.UserAgent = "test/1"
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			testMethod(t, r, tt.method)
			testRawPath(t, r, tt.path)
			if tt.decoded != "" && r.Path != tt.decoded {
				t.Errorf("decoded path = %q, want %q", r.Path, tt.decoded)
			}
			testQuery(t, r, tt.query)
			testHeader(t, r, "Authorization", tt.auth)
			testHeader(t, r, "User-Agent", "cioq/"+Version+" (+https://github.com/cioq/cioq) test/1")
			testBody(t, r, tt.body)
			if tt.strictOn {
				testHeader(t, r, "X-Strict-Mode", "1")
			} else {
				testHeader(t, r, "X-Strict-Mode", "")
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBatchPartial(t *testing.T) {
	ops := []Operation{
		{Type: EntityPerson, Action: ActionIdentify, Identifiers: person("u1"), Attributes: map[string]any{"plan": "pro"}},
		{Type: EntityPerson, Action: ActionIdentify, Identifiers: &Identifiers{Email: "leak@example.com"}, Attributes: map[string]any{"nick": "zed-the-great"}},
		{Type: EntityPerson, Action: ActionDelete, Identifiers: person("u3")},
	}
	body := `{"errors":[{"batch_index":1,"reason":"invalid","field":"attributes","message":"value zed-the-great for leak@example.com too long"},{"batch_index":2,"reason":"not_found","message":"person not found"}]}`
	for _, status := range []int{http.StatusMultiStatus, http.StatusOK} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			c, srv := setup(t)
			srv.setHandler(respond(status, body))
			res, err := c.Batch(context.Background(), ops)
			if err != nil {
				t.Fatal(err)
			}
			if res.ItemError(0) != nil {
				t.Errorf("item 0 reported failed")
			}
			e1 := res.ItemError(1)
			if e1 == nil || e1.Reason != "invalid" || e1.Field != "attributes" {
				t.Fatalf("item 1 = %+v", e1)
			}
			if strings.Contains(e1.Message, "zed-the-great") || strings.Contains(e1.Message, "leak@example.com") {
				t.Errorf("item message not scrubbed: %q", e1.Message)
			}
			if e2 := res.ItemError(2); e2 == nil || e2.Message != "person not found" {
				t.Errorf("item 2 = %+v", e2)
			}
			if res.ItemError(3) != nil {
				t.Errorf("item 3 reported failed")
			}
		})
	}
}

func TestEntityErrorsUnder200(t *testing.T) {
	c, srv := setup(t)
	srv.setHandler(respond(200, `{"errors":[{"reason":"invalid","field":"identifiers","message":"bad"}]}`))
	err := c.Entity(context.Background(), Operation{Type: EntityPerson, Action: ActionDelete, Identifiers: person("u1")})
	if ClassOf(err) != ClassPermanent || err == nil || !strings.Contains(err.Error(), "identifiers: bad") {
		t.Fatalf("err = %v", err)
	}
}

// TestSegmentSplit: 2500 ids go out as 1000, 1000 and 500, in order.
func TestSegmentSplit(t *testing.T) {
	c, srv := setup(t)
	ids := manyStrings(2500, func(i int) string { return "p" + strings.Repeat("0", 4-len(itoa(i))) + itoa(i) })
	if err := c.AddToSegment(context.Background(), 42, IDTypeCioID, ids); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	next := 0
	for i, want := range []int{1000, 1000, 500} {
		r := reqs[i]
		testRawPath(t, r, "/api/v1/segments/42/add_customers")
		testQuery(t, r, "id_type=cio_id")
		var b struct{ IDs []string }
		if err := jsonUnmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		if len(b.IDs) != want {
			t.Errorf("request %d has %d ids, want %d", i, len(b.IDs), want)
		}
		for _, id := range b.IDs {
			if id != ids[next] {
				t.Fatalf("request %d: id %q out of order, want %q", i, id, ids[next])
			}
			next++
		}
	}
}

// TestSegmentSplitStopsAtFailure: the first failed chunk stops the rest.
func TestSegmentSplitStopsAtFailure(t *testing.T) {
	c, srv := setup(t)
	srv.setHandler(respond(404, "Segment not found"))
	err := c.RemoveFromSegment(context.Background(), 42, "", manyStrings(2500, itoa))
	var ae *APIError
	if !asAPIError(err, &ae) || ae.StatusCode != 404 || ae.Message != "Segment not found" || ae.Class != ClassPermanent {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
