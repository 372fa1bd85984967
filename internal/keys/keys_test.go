package keys_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cioq/cioq/internal/keys"
)

const (
	id  = "k-7h2mq4xw9c3v5b8n6p1r0s2t4u"
	enq = int64(1700000000123)       // an enqueued_at, unix ms
	ok  = "3f9c2a7d0b1e4c6a8d2f5b7e" // an order key (12 bytes of SHA-256, hex)
	// anonHash is the first 12 bytes of SHA-256("anon-7f3a"), in hex.
	anonHash = "524eacdc99aba35ef06ef2cd"
)

// schema is the golden list: every key function and constant with example
// arguments and the exact bytes it must return. These bytes are stored
// state in users' Redis: a row that changes is a migration, not a refactor.
var schema = []struct {
	name string // the function or constant of package keys
	got  string
	want string
}{
	{"Workspace", keys.Workspace(""), "default"},
	{"Workspace", keys.Workspace("default"), "default"},
	{"Workspace", keys.Workspace("eu-shop"), "eu-shop"},

	{"Sent", keys.Sent(id, enq), "cioq:sent:" + id + ":1700000000123"},
	{"Sent", keys.Sent(id, 0), "cioq:sent:" + id},
	{"Sent", keys.Sent(id, -1), "cioq:sent:" + id},
	{"Attempts", keys.Attempts(id, enq), "cioq:attempts:" + id + ":1700000000123"},
	{"Attempts", keys.Attempts(id, 0), "cioq:attempts:" + id},
	{"BatchProgress", keys.BatchProgress(id, enq), "cioq:batch:" + id + ":1700000000123"},
	{"BatchProgress", keys.BatchProgress(id, 0), "cioq:batch:" + id},

	{"DeadLetterIndex", keys.DeadLetterIndex, "cioq:{dlq}:index"},
	{"DeadLetter", keys.DeadLetter(id), "cioq:{dlq}:t:" + id},
	{"DeadLetterHistory", keys.DeadLetterHistory(id), "cioq:{dlq}:h:" + id},

	{"Seq", keys.Seq("", ok), "cioq:seq:default:" + ok},
	{"Seq", keys.Seq("default", ok), "cioq:seq:default:" + ok},
	{"Seq", keys.Seq("eu-shop", ok), "cioq:seq:eu-shop:" + ok},
	{"SeqState", keys.SeqState("", ok), "cioq:{cioq:seq:default:" + ok + "}:state"},
	{"SeqState", keys.SeqState("eu-shop", ok), "cioq:{cioq:seq:eu-shop:" + ok + "}:state"},
	{"Done", keys.Done("", ok), "cioq:done:default:" + ok},
	{"Done", keys.Done("eu-shop", ok), "cioq:done:eu-shop:" + ok},

	{"AnonymousMerge", keys.AnonymousMerge("", "anon-7f3a"), "cioq:anon:default:" + anonHash},
	{"AnonymousMerge", keys.AnonymousMerge("eu-shop", "anon-7f3a"), "cioq:anon:eu-shop:" + anonHash},

	{"KeySecret", keys.KeySecret, "cioq:key-secret"},

	{"RecoveryRun", keys.RecoveryRun("", "track"), "cioq:recovery:{default:track}:run"},
	{"RecoveryRun", keys.RecoveryRun("eu-shop", "app"), "cioq:recovery:{eu-shop:app}:run"},
	{"RecoveryPulled", keys.RecoveryPulled("", "pipelines"), "cioq:recovery:{default:pipelines}:pulled"},
	{"Retrying", keys.Retrying("default", "", "track"), "cioq:{default}:retrying:default:track"},
	{"Retrying", keys.Retrying("critical", "eu-shop", "app"), "cioq:{critical}:retrying:eu-shop:app"},

	{"ReplicationProbe", keys.ReplicationProbe("critical"), "cioq:{critical}:replicated"},

	{"StuckLock", keys.StuckLock, "cioq:lock:stuck-check"},
	{"StuckHold", keys.StuckHold("bulk"), "cioq:{bulk}:stuck"},

	{"RateLimitPrefix", keys.RateLimitPrefix, "cioq:ratelimit:"},
	// The default workspace's limiter keys keep the empty workspace.
	{"RateLimitAPI", keys.RateLimitAPI("", "track"), ":track"},
	{"RateLimitAPI", keys.RateLimitAPI("eu-shop", "transactional"), "eu-shop:transactional"},
	{"RateLimitBroadcast", keys.RateLimitBroadcast("", 42), ":broadcast:42"},
	{"RateLimitBroadcast", keys.RateLimitBroadcast("eu-shop", 7), "eu-shop:broadcast:7"},
	{"RateLimitTAT", keys.RateLimitTAT(keys.RateLimitPrefix, keys.RateLimitAPI("", "track")), "cioq:ratelimit:{:track}:tat"},
	{"RateLimitTAT", keys.RateLimitTAT("other:", "eu-shop:app"), "other:{eu-shop:app}:tat"},
	{"RateLimitThrottle", keys.RateLimitThrottle(keys.RateLimitPrefix, keys.RateLimitBroadcast("eu-shop", 7)), "cioq:ratelimit:{eu-shop:broadcast:7}:429"},
	{"RateLimitWake", keys.RateLimitWake(keys.RateLimitPrefix, keys.RateLimitAPI("", "track")), "cioq:ratelimit:{:track}:wake"},

	{"IngestSeen", keys.IngestSeen("shop", "0123456789abcdef0123456789abcdef"), "cioq:ingest:seen:shop:0123456789abcdef0123456789abcdef"},

	{"StatusTask", keys.StatusTask(id), "cioq:status:t:" + id},
	{"StatusDelivery", keys.StatusDelivery("", "delivery:dlv_1"), "cioq:status:d:default:delivery:dlv_1"},
	{"StatusDelivery", keys.StatusDelivery("eu-shop", "trigger:7"), "cioq:status:d:eu-shop:trigger:7"},
	{"StatusPending", keys.StatusPending(""), "cioq:status:pending:default"},
	{"StatusPending", keys.StatusPending("eu-shop"), "cioq:status:pending:eu-shop"},
	{"StatusEventSeen", keys.StatusEventSeen("", "0123456789abcdef0123456789abcdef"), "cioq:status:e:default:0123456789abcdef0123456789abcdef"},
	{"StatusOther", keys.StatusOther("eu-shop"), "cioq:status:other:eu-shop"},

	{"TestRedisNextDB", keys.TestRedisNextDB, "cioq:testredis:next-db"},

	// asynq v0.26's layout (its internal/base).
	{"AsynqQueues", keys.AsynqQueues, "asynq:queues"},
	{"AsynqActive", keys.AsynqActive("default"), "asynq:{default}:active"},
	{"AsynqLease", keys.AsynqLease("default"), "asynq:{default}:lease"},
	{"AsynqRetry", keys.AsynqRetry("critical"), "asynq:{critical}:retry"},
	{"AsynqArchived", keys.AsynqArchived("bulk"), "asynq:{bulk}:archived"},
	{"AsynqPending", keys.AsynqPending("bulk"), "asynq:{bulk}:pending"},
	{"AsynqScheduled", keys.AsynqScheduled("bulk"), "asynq:{bulk}:scheduled"},
	{"AsynqTask", keys.AsynqTask("default", id), "asynq:{default}:t:" + id},
	{"AsynqPaused", keys.AsynqPaused("critical"), "asynq:{critical}:paused"},
	{"AsynqTaskPrefix", keys.AsynqTaskPrefix("default"), "asynq:{default}:t:"},
}

func TestSchema(t *testing.T) {
	for _, k := range schema {
		if k.got != k.want {
			t.Errorf("%s: got %q, want %q", k.name, k.got, k.want)
		}
	}
}

// TestSchemaListsEveryKey fails when keys.go gains an exported function or
// constant without a row in schema.
func TestSchemaListsEveryKey(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "keys.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, k := range schema {
		listed[k.name] = true
	}
	var names []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				names = append(names, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if v, ok := s.(*ast.ValueSpec); ok {
					for _, n := range v.Names {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("found no declarations in keys.go")
	}
	for _, n := range names {
		if ast.IsExported(n) && !listed[n] {
			t.Errorf("keys.%s has no row in the golden schema", n)
		}
	}
}

// hashTag is the part of key Redis Cluster hashes: the text between the
// first "{" and the next "}" when it is not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// TestHashTags checks that the keys a script or transaction uses together
// hash to one Cluster slot.
func TestHashTags(t *testing.T) {
	groups := []struct {
		why  string
		tag  string
		keys []string
	}{
		{"a dead letter is written in one MULTI/EXEC", "dlq",
			[]string{keys.DeadLetterIndex, keys.DeadLetter(id), keys.DeadLetterHistory(id), keys.DeadLetter("{x}")}},
		{"the pull script reads the retrying index with asynq's retry and lease sets", "critical",
			[]string{keys.Retrying("critical", "eu-shop", "track"), keys.AsynqRetry("critical"), keys.AsynqLease("critical")}},
		{"the claim script moves an entry from asynq's keys to the holding hash", "default",
			[]string{keys.AsynqActive("default"), keys.AsynqLease("default"), keys.AsynqTask("default", id), keys.StuckHold("default"),
				keys.AsynqPending("default"), keys.AsynqTask("default", "{x}")}},
		{"the delete-archived script reads asynq's task hash and deletes it from the archive", "bulk",
			[]string{keys.AsynqTask("bulk", id), keys.AsynqArchived("bulk")}},
		{"the end-of-run script reads the run and pulled markers", "default:track",
			[]string{keys.RecoveryRun("", "track"), keys.RecoveryPulled("", "track")}},
		{"the stamp script takes a person's number and records its task", keys.Seq("eu-shop", ok),
			[]string{keys.Seq("eu-shop", ok), keys.SeqState("eu-shop", ok)}},
		{"the reserve script reads the GCRA position, the 429 state and the come-back queue", "eu-shop:app",
			[]string{keys.RateLimitTAT(keys.RateLimitPrefix, "eu-shop:app"), keys.RateLimitThrottle(keys.RateLimitPrefix, "eu-shop:app"),
				keys.RateLimitWake(keys.RateLimitPrefix, "eu-shop:app")}},
	}
	for _, g := range groups {
		for _, k := range g.keys {
			if got := hashTag(k); got != g.tag {
				t.Errorf("%s: %q hashes %q, want tag {%s}", g.why, k, got, g.tag)
			}
		}
	}
	// Keys used alone carry no tag and spread over the cluster.
	for _, k := range []string{keys.Sent(id, enq), keys.Attempts(id, enq), keys.BatchProgress(id, enq), keys.Seq("", ok), keys.Done("", ok),
		keys.KeySecret, keys.StuckLock, keys.TestRedisNextDB, keys.AsynqQueues, keys.IngestSeen("shop", ok),
		keys.StatusTask(id), keys.StatusDelivery("", "delivery:x"), keys.StatusPending(""), keys.StatusEventSeen("", ok), keys.StatusOther("")} {
		if got := hashTag(k); got != k {
			t.Errorf("%q hashes %q, want the whole key (no tag)", k, got)
		}
	}
}

// keyLiteral matches a string that holds a cioq or asynq key name (or its
// start): "cioq:" or "asynq:" followed by anything but a space, which
// messages like "cioq: unknown command" and "archived by asynq: ..." have.
var keyLiteral = regexp.MustCompile(`\b(cioq|asynq):(\S|$)`)

// TestNoKeysOutsidePackage fails when a non-test Go file outside this
// package holds a string literal (a Lua script too) naming a cioq or asynq
// Redis key: every key is built here.
func TestNoKeysOutsidePackage(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	scanned := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == here || path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		scanned++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				s = lit.Value
			}
			if loc := keyLiteral.FindStringIndex(s); loc != nil {
				pos := fset.Position(lit.Pos())
				rel, _ := filepath.Rel(root, pos.Filename)
				t.Errorf("%s:%d: a Redis key literal (%q): build it with a function of internal/keys", rel, pos.Line, s[loc[0]:min(len(s), loc[0]+40)])
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 50 {
		t.Fatalf("scanned only %d files under %s: is the module root right?", scanned, root)
	}
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := filepath.Abs(".")
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

func TestKeyLiteral(t *testing.T) {
	for s, want := range map[string]bool{
		"cioq:sent:":                   true,
		"cioq:{dlq}:t:":                true,
		"asynq:{":                      true,
		"asynq:queues":                 true,
		"local k = 'cioq:' .. ARGV[1]": true,
		"(asynq:{":                     true,
		"cioq:":                        true,
		"cioq: unknown command %q":     false,
		"archived by asynq: ":          false,
		"cioq-event:":                  false,
		"cioq_deliveries_total":        false,
		"customerio:default:track":     false,
	} {
		if got := keyLiteral.MatchString(s); got != want {
			t.Errorf("keyLiteral.MatchString(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestWorkspaceNames(t *testing.T) {
	// Every key naming a workspace spells the default one "default".
	for _, ws := range []string{"", "default"} {
		for _, k := range []string{keys.Seq(ws, ok), keys.SeqState(ws, ok), keys.Done(ws, ok), keys.RecoveryRun(ws, "track"),
			keys.RecoveryPulled(ws, "track"), keys.Retrying("default", ws, "track"), keys.StatusDelivery(ws, "delivery:x"),
			keys.StatusEventSeen(ws, ok), keys.StatusPending(ws) + ":", keys.StatusOther(ws) + ":"} {
			if !strings.Contains(k, "default:") || strings.Contains(k, "::") {
				t.Errorf("workspace %q: %q does not name the default workspace as \"default\"", ws, k)
			}
		}
	}
	if !slices.Equal([]string{keys.Workspace("x"), keys.Workspace(" ")}, []string{"x", " "}) {
		t.Error("Workspace changed a named workspace")
	}
}
