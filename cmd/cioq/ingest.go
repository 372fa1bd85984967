package main

import (
	"net/http"
	"strings"
)

// mountIngest returns the ingest front door's handler, configured by the
// file CIOQ_INGEST_CONFIG names, and a word on its state for the log.
//
// INGEST-NOT-WIRED: the ingest package (ingest.New, ingest.LoadConfig) had
// not landed when serve was written. Once it compiles, replace the body
// with:
//
//	path := strings.TrimSpace(o.getenv(envIngestConfig))
//	cfg, err := ingest.LoadConfig(path)   // path "" = defaults, if ingest allows it
//	if err != nil { return nil, "", configError(err) }
//	h, err := ingest.New(cfg)             // plus producer/metrics, as its API wants
//	if err != nil { return nil, "", configError(err) }
//	return h, "on", nil
func mountIngest(o siteOptions) (http.Handler, string, error) {
	if path := strings.TrimSpace(o.getenv(envIngestConfig)); path != "" {
		o.log.Warn("CIOQ_INGEST_CONFIG is set but this build has no ingest front door yet; ignoring it")
	}
	return nil, "not built in", nil
}
