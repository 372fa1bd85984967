package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/cioq/cioq/cmd/cioq/internal/config"
	"github.com/cioq/cioq/ingest"
	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/worker"
)

// mountIngest returns the ingest front door's handler, configured by the
// file CIOQ_INGEST_CONFIG names, and a word on its state for the log; no
// handler when the variable is unset. A bad file is a configuration error,
// and so is a source naming a workspace CIOQ_WORKSPACES_FILE (when set)
// does not have.
func mountIngest(o siteOptions) (http.Handler, string, error) {
	path := strings.TrimSpace(o.getenv(envIngestConfig))
	if path == "" {
		return nil, "off (" + envIngestConfig + " not set)", nil
	}
	fc, err := ingest.LoadConfig(path)
	if err != nil {
		return nil, "", configError(err)
	}
	// With the workers' workspaces file, a source or a task naming a
	// workspace that is not in it is refused (at start, or with a 400).
	var popts []producer.Option
	names, known, err := config.WorkspaceNames(o.getenv)
	if err != nil {
		return nil, "", configError(err)
	}
	if known {
		popts = append(popts, producer.Workspaces(names...))
	}
	queues, err := servedQueues(o.getenv)
	if err != nil {
		return nil, "", err
	}
	// With a contracts file, every task of every front door is checked
	// against it before it is enqueued.
	set, err := config.LoadContracts(o.getenv)
	if err != nil {
		return nil, "", configError(err)
	}
	if set != nil {
		set.SetObserver(contractsObserver{o.metrics})
		popts = append(popts, producer.WithContracts(set))
	}
	h, err := ingest.New(ingest.Config{
		Producer: producer.NewFromRedis(o.rdb, append(o.producer, popts...)...),
		File:     fc,
		Metrics:  o.metrics,
		Logger:   o.log,
		Getenv:   o.getenv,
		Queues:   queues,
	})
	if err != nil {
		return nil, "", configError(err)
	}
	return h, "on", nil
}

// servedQueues are the queues the workers serve, as /v1/tasks may use
// them: the names of CIOQ_QUEUES (the workers' setting, weights ignored),
// or the workers' default queues.
func servedQueues(getenv func(string) string) ([]string, error) {
	q := worker.DefaultQueues()
	if v := strings.TrimSpace(getenv(config.EnvQueues)); v != "" {
		var err error
		if q, err = config.ParseQueues(v); err != nil {
			return nil, configError(fmt.Errorf("config: %s: %w", config.EnvQueues, err))
		}
	}
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
