package ops

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// These helpers do what prometheus/testutil's ToFloat64, CollectAndCompare
// and GatherAndLint do. testutil itself needs github.com/kylelemons/godebug,
// which go.mod does not have; ops adds no dependency for its tests.

// toFloat64 returns the value of the single counter or gauge c collects.
func toFloat64(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var ms []prometheus.Metric
	for m := range ch {
		ms = append(ms, m)
	}
	if len(ms) != 1 {
		t.Fatalf("collected %d metrics, want 1", len(ms))
	}
	var pb dto.Metric
	if err := ms[0].Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("metric is neither counter nor gauge: %v", &pb)
	return 0
}

// collectorGatherer gathers the metrics of collectors on a fresh registry.
func collectorGatherer(t *testing.T, cs ...prometheus.Collector) prometheus.Gatherer {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// gatherAndCompare compares what g gathers, limited to names (all when
// none), with the text exposition want.
func gatherAndCompare(g prometheus.Gatherer, want io.Reader, names ...string) error {
	got, err := g.Gather()
	if err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	wantMap, err := parser.TextToMetricFamilies(want)
	if err != nil {
		return fmt.Errorf("parse expected: %w", err)
	}
	keep := func(name string) bool {
		if len(names) == 0 {
			return true
		}
		for _, n := range names {
			if n == name {
				return true
			}
		}
		return false
	}
	var wantMFs, gotMFs []*dto.MetricFamily
	for name, mf := range wantMap {
		if keep(name) {
			wantMFs = append(wantMFs, mf)
		}
	}
	for _, mf := range got {
		if keep(mf.GetName()) {
			gotMFs = append(gotMFs, mf)
		}
	}
	sort.Slice(wantMFs, func(i, j int) bool { return wantMFs[i].GetName() < wantMFs[j].GetName() })
	// Normalise the expected text through the same gatherer code path
	// (sorted labels and series).
	wantText, err := encode(prometheus.Gatherers{gathererOf(wantMFs)})
	if err != nil {
		return err
	}
	gotText, err := encode(gathererOf(gotMFs))
	if err != nil {
		return err
	}
	if wantText != gotText {
		return fmt.Errorf("metrics differ:\n--- want\n%s\n--- got\n%s", wantText, gotText)
	}
	return nil
}

type gathererOf []*dto.MetricFamily

func (g gathererOf) Gather() ([]*dto.MetricFamily, error) { return g, nil }

func encode(g prometheus.Gatherer) (string, error) {
	mfs, err := g.Gather()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return "", err
		}
	}
	return strings.TrimSpace(buf.String()), nil
}

// lint reports problems promlint finds in what g gathers.
func lint(t *testing.T, g prometheus.Gatherer) []promlint.Problem {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	return problems
}
