package worker

import "context"

// ProbeCredentials probes every configured workspace's Track and App
// credentials once, now, with the reads the readiness probes make
// (GET /api/v1/accounts/region, GET /v1/transactional, through the shared
// rate limiter), and returns one check per workspace and API as Checks
// does (without kept_tasks): an error for credentials refused (401), a
// detail otherwise (accepted, inconclusive, or why the API cannot be
// probed). The worker need not be started; `cioq doctor` runs it.
func (w *Worker) ProbeCredentials(ctx context.Context) []Check {
	w.probeAll(ctx)
	checks := w.Checks()
	return checks[:len(checks)-1]
}
