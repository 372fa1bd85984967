package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/customerio/sandbox"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// scenario is one thing the demo shows: the tasks it enqueues and how the
// sandbox shows it arrived.
type scenario struct {
	title string
	// phase 2 scenarios need phase 1's state in Customer.io (a person, an
	// object, anonymous events): they are enqueued once phase 1 arrived.
	phase   int
	enqueue func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error)
	// landed reports whether the sandbox shows the scenario's effect.
	landed func(s *sandbox.Server) bool
	// refused: enqueue must fail, a contract refusing the task (nothing
	// is enqueued; the scenario shows the error).
	refused bool
	// needs says why the scenario cannot run here ("" when it can): the
	// contracts scenarios need contracts, the late event the sandbox's
	// clock.
	needs func(d *demo) string
	// before runs just before enqueue (the late event moves the sandbox's
	// clock past the merge window).
	before func(d *demo)
}

const (
	companyType = "1" // object type id of "Companies"
	anonID      = "anon-7f3a"
	segmentID   = 3
	broadcastID = 1
)

// scenarios are the demo's scenarios in the order they are enqueued.
func (d *demo) scenarios() []scenario {
	return []scenario{
		passwordReset(),
		orderConfirmation("order-ORD-12345:confirmation:" + d.run),
		bouncingWelcome(),
		segmentAttributes(),
		anonymousPageViews(),
		companyObject(),
		pipelinesIdentifyTrack(),
		signupMerge(),
		companyMember(),
		manualSegment(),
		broadcast(),
		refusedSend(),
		coercedAttributes(),
		lateAnonymousEvent(),
	}
}

func needContracts(d *demo) string {
	if d.Contracts == nil {
		return "no contracts (set CIOQ_CONTRACTS_FILE)"
	}
	return ""
}

// refusedSend is a password reset without the reset_link its template
// uses: Customer.io would accept it and fail it out of sight; the
// contracts refuse it at enqueue, naming the variable.
func refusedSend() scenario {
	return scenario{
		title:   "password reset without message_data.reset_link: refused at enqueue (Customer.io would answer 200 and fail it out of sight)",
		phase:   1,
		refused: true,
		needs:   needContracts,
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			return one(p.SendEmail(ctx, tasks.SendEmail{
				SendOptions: customerio.SendOptions{
					TransactionalMessageID: "password_reset",
					Identifiers:            &customerio.Identifiers{ID: "user-1001"},
					MessageData:            map[string]any{"expiry_hours": 1},
				},
				To: "ada@example.com",
			}))
		},
	}
}

// coercedAttributes sends attributes as a web form does, as text, and a
// JavaScript millisecond timestamp: the contracts coerce them, so segments
// on "total_revenue greater than 500" match.
func coercedAttributes() scenario {
	ms := time.Now().UnixMilli()
	return scenario{
		title: `coerced attributes: user-1006 total_revenue "1250" (text) stored as the number 1250, last_active_at in milliseconds stored in seconds`,
		phase: 1,
		needs: needContracts,
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			return one(p.Identify(ctx, tasks.Identify{Identifiers: customerio.Identifiers{ID: "user-1006"}, Attributes: map[string]any{
				"email": "barbara@example.com", "total_revenue": "1250", "last_active_at": ms}}))
		},
		landed: func(s *sandbox.Server) bool {
			p, ok := s.Person("user-1006")
			rev, isNum := p.Attributes["total_revenue"].(int64)
			last, _ := p.Attributes["last_active_at"].(int64)
			return ok && isNum && rev == 1250 && last == ms/1000
		},
	}
}

// lateAnonymousEvent is an anonymous page view that reaches Customer.io
// more than five minutes after the signup that merged its visitor (a
// backlog, retries): Customer.io would orphan it; the worker remembers the
// merge and delivers it as the person's event.
func lateAnonymousEvent() scenario {
	return scenario{
		title: "late page view of " + anonID + " 6 minutes after the signup merge (Customer.io merges only within 5): delivered as user-1004's",
		phase: 3,
		needs: func(d *demo) string {
			if d.AdvanceSandboxClock == nil {
				return "needs the sandbox (its clock is moved past the merge window)"
			}
			return ""
		},
		before: func(d *demo) { d.AdvanceSandboxClock(6 * time.Minute) },
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			return one(p.TrackAnonymous(ctx, tasks.TrackAnonymous{AnonymousID: anonID, Name: "/checkout", Type: customerio.EventTypePage}))
		},
		landed: func(s *sandbox.Server) bool {
			for _, e := range s.Events("user-1004") {
				if e.Name == "/checkout" {
					return true
				}
			}
			return false
		},
	}
}

func passwordReset() scenario {
	return scenario{
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
	}
}

// orderConfirmation enqueues one order confirmation twice under key.
func orderConfirmation(key string) scenario {
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
	return scenario{
		title: "order confirmation email, enqueued twice with one idempotency key (sent once)",
		phase: 1,
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			send := func() (producer.Receipt, error) { return p.SendEmail(ctx, order, producer.IdempotencyKey(key)) }
			return many(send, send)
		},
		landed: hasDelivery("order_confirmation"),
	}
}

// bouncingWelcome sends to an address that bounces: Customer.io accepts
// the send, and its reporting webhook says later that it bounced.
func bouncingWelcome() scenario {
	return scenario{
		title: "welcome email to bounce@example.com (accepted, then reported bounced)",
		phase: 1,
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			return one(p.SendEmail(ctx, tasks.SendEmail{
				SendOptions: customerio.SendOptions{
					TransactionalMessageID: "welcome",
					Identifiers:            &customerio.Identifiers{ID: "user-1007"},
					MessageData:            map[string]any{"first_name": "Bo"},
				},
				To: "bounce@example.com",
			}))
		},
		landed: hasDelivery("welcome"),
	}
}

func segmentAttributes() scenario {
	return scenario{
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
			return each(people, func(pi tasks.Identify) (producer.Receipt, error) { return p.Identify(ctx, pi) })
		},
		landed: func(s *sandbox.Server) bool {
			return hasAttr(s, "user-1001", "total_revenue") && hasAttr(s, "user-1002", "churn_risk_score") && hasAttr(s, "user-1003", "session_count")
		},
	}
}

func anonymousPageViews() scenario {
	return scenario{
		title: "anonymous page views of visitor " + anonID + ": /, /pricing, /signup",
		phase: 1,
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			return each([]string{"/", "/pricing", "/signup"}, func(page string) (producer.Receipt, error) {
				return p.TrackAnonymous(ctx, tasks.TrackAnonymous{
					AnonymousID: anonID, Name: page, Type: customerio.EventTypePage,
					Data: map[string]any{"referrer": "https://www.google.com/"},
				})
			})
		},
		landed: func(s *sandbox.Server) bool { return len(s.AnonymousEvents(anonID)) >= 3 || mergedEvents(s) >= 3 },
	}
}

func companyObject() scenario {
	return scenario{
		title: "company object acme (plan, mrr, employee_count)",
		phase: 1,
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			return one(p.UpsertObject(ctx, tasks.ObjectUpsert{
				ObjectTypeID: companyType, ObjectID: "acme",
				Attributes: map[string]any{"name": "Acme Inc", "plan": "enterprise", "mrr": 4200, "employee_count": 250, "industry": "manufacturing"},
			}))
		},
		landed: func(s *sandbox.Server) bool { _, ok := s.Object(companyType, "acme"); return ok },
	}
}

func pipelinesIdentifyTrack() scenario {
	return scenario{
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
	}
}

func signupMerge() scenario {
	return scenario{
		title: "signup of user-1004 merges " + anonID + "'s page views",
		phase: 2,
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			return one(p.MergeAnonymous(ctx, tasks.MergeAnonymous{
				Identifiers: customerio.Identifiers{ID: "user-1004"}, AnonymousID: anonID,
				Attributes: map[string]any{"email": "alan@example.com", "created_at": time.Now().Unix()},
			}))
		},
		landed: func(s *sandbox.Server) bool { return mergedEvents(s) >= 3 },
	}
}

func companyMember() scenario {
	return scenario{
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
	}
}

func manualSegment() scenario {
	return scenario{
		title: fmt.Sprintf("manual segment %d: add user-1001 and user-1003", segmentID),
		phase: 2,
		enqueue: func(ctx context.Context, p *producer.Client) ([]producer.Receipt, error) {
			return one(p.AddToSegment(ctx, tasks.SegmentAdd{SegmentID: segmentID, IDs: []string{"user-1001", "user-1003"}}))
		},
		landed: func(s *sandbox.Server) bool { m, _ := s.SegmentMembers(segmentID); return len(m) >= 2 },
	}
}

func broadcast() scenario {
	return scenario{
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
	}
}

// one is the receipts of a single enqueue.
func one(r producer.Receipt, err error) ([]producer.Receipt, error) {
	if err != nil {
		return nil, err
	}
	return []producer.Receipt{r}, nil
}

// each enqueues one task per item, in order, stopping at the first error
// (with the receipts so far).
func each[T any](items []T, enqueue func(T) (producer.Receipt, error)) ([]producer.Receipt, error) {
	var rs []producer.Receipt
	for _, it := range items {
		r, err := enqueue(it)
		if err != nil {
			return rs, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// many runs the enqueue calls in order, as each does.
func many(calls ...func() (producer.Receipt, error)) ([]producer.Receipt, error) {
	return each(calls, func(c func() (producer.Receipt, error)) (producer.Receipt, error) { return c() })
}

// hasDelivery reports whether the sandbox delivered the transactional
// message template.
func hasDelivery(template string) func(*sandbox.Server) bool {
	return func(s *sandbox.Server) bool {
		for _, dl := range s.Deliveries() {
			if dl.TransactionalMessageID == template {
				return true
			}
		}
		return false
	}
}

// hasAttr reports whether the person id has the attribute attr.
func hasAttr(s *sandbox.Server, id, attr string) bool {
	p, ok := s.Person(id)
	_, has := p.Attributes[attr]
	return ok && has
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

// ForgetVisitor removes what an earlier run of the demo left in rdb about
// its anonymous visitor: the record of the signup that merged it into
// user-1004 (keys.AnonymousMerge). With it, this run's "anonymous page
// views" would go out as user-1004's events, as a late anonymous event
// does, and the scenario would find no anonymous events (a second `make
// run` on the same Redis reported it MISSING).
func ForgetVisitor(ctx context.Context, rdb redis.UniversalClient) error {
	return rdb.Del(ctx, keys.AnonymousMerge("", anonID)).Err()
}
