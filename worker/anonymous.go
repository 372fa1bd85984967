package worker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/internal/keys"
	"github.com/cioq/cioq/tasks"
)

// DefaultAnonymousMergeTTL is how long a merged anonymous visitor is
// remembered (Config.AnonymousMergeTTL): Customer.io keeps anonymous
// events for 30 days.
const DefaultAnonymousMergeTTL = 30 * 24 * time.Hour

// AnonymousRescueObserver is an optional interface of an Observer: an
// Observer implementing it is told of every anonymous event delivered as
// the event of the person its visitor was merged into (see
// Config.AnonymousMergeTTL), an event Customer.io would have orphaned had
// it arrived more than five minutes after the merge.
type AnonymousRescueObserver interface {
	AnonymousRescued(taskType, workspace string)
}

// rescue looks up, for an anonymous event, the person its visitor was
// merged into; t.rescued is set when there is one. A Redis error delivers
// the event as it is (as cioq did before it remembered merges).
func (w *Worker) rescue(ctx context.Context, t *Task) {
	a, ok := t.Payload.(tasks.AnonymousActor)
	if !ok || w.cfg.AnonymousMergeTTL < 0 {
		return
	}
	anon := a.AnonymousActor()
	if anon == "" {
		return
	}
	b, err := w.rdb.Get(ctx, keys.AnonymousMerge(workspaceOf(t), anon)).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			w.log.Warn("could not read the anonymous merge record; delivering the event as anonymous", "type", t.Type, "task_id", t.ID, "error", err.Error())
		}
		return
	}
	var person customerio.Identifiers
	if json.Unmarshal(b, &person) != nil || tasks.PathID(person) == "" {
		return
	}
	if apiOf(t.Type) == customerio.APIPipelines && person.ID == "" {
		return // a Pipelines call names a person by userId only
	}
	t.rescued = &person
}

// delivered runs after Customer.io accepted t: it remembers the merge t
// performed, and counts a rescued anonymous event.
func (w *Worker) delivered(ctx context.Context, t *Task) {
	if t.rescued != nil {
		if o, ok := w.obs.(AnonymousRescueObserver); ok {
			o.AnonymousRescued(t.Type, workspaceOf(t))
		}
		w.log.Debug("anonymous event delivered as the merged person's", "type", t.Type, "task_id", t.ID)
	}
	m, ok := t.Payload.(tasks.AnonymousMerger)
	if !ok || w.cfg.AnonymousMergeTTL < 0 {
		return
	}
	anon, person := m.AnonymousMerge()
	if anon == "" || tasks.PathID(person) == "" {
		return
	}
	b, _ := json.Marshal(customerio.Identifiers{ID: person.ID, Email: person.Email, CioID: person.CioID})
	// The task is delivered whatever happens here: the record only rescues
	// later events.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.rdb.Set(wctx, keys.AnonymousMerge(workspaceOf(t), anon), b, w.cfg.AnonymousMergeTTL).Err(); err != nil {
		w.log.Warn("could not record the anonymous merge", "type", t.Type, "task_id", t.ID, "error", err.Error())
	}
}
