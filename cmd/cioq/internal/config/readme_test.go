package config

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio"
)

// readmeSection returns the README's section under the given heading line,
// up to the next heading of the same or a higher level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	s = s[i+len(heading)+2:]
	level := strings.Index(heading, " ") // 3 for "### "
	for n := 1; n <= level; n++ {
		if j := strings.Index(s, "\n"+strings.Repeat("#", n)+" "); j >= 0 {
			s = s[:j]
		}
	}
	return s
}

// readmeWorkspacesExample returns the one ```json block of the README's
// workspaces file section.
func readmeWorkspacesExample(t *testing.T) (section, example string) {
	t.Helper()
	section = readmeSection(t, "### The workspaces file")
	parts := strings.Split(section, "```json\n")
	if len(parts) != 2 {
		t.Fatalf("want exactly one ```json block in the README's workspaces file section, found %d", len(parts)-1)
	}
	end := strings.Index(parts[1], "```")
	if end < 0 {
		t.Fatal("unterminated ```json block")
	}
	return section, parts[1][:end]
}

// exampleEnv returns an environment in which the README's example loads:
// REDIS_URL, CIOQ_WORKSPACES_FILE naming the example (or file, when given)
// and made-up credentials in the variables its *_env keys name; a workspace
// with app_workspace_id gets a service-account token.
func exampleEnv(t *testing.T, example string, file ...string) map[string]string {
	t.Helper()
	var doc struct {
		Workspaces map[string]map[string]any `json:"workspaces"`
	}
	if err := json.Unmarshal([]byte(example), &doc); err != nil {
		t.Fatalf("the README's example is not JSON: %v", err)
	}
	body := example
	if len(file) > 0 {
		body = file[0]
	}
	vars := map[string]string{EnvRedisURL: "redis://127.0.0.1:6379/0", EnvWorkspacesFile: writeFile(t, body)}
	for _, ws := range doc.Workspaces {
		for k, v := range ws {
			name, ok := v.(string)
			if !ok || !strings.HasSuffix(k, "_env") {
				continue
			}
			vars[name] = "readme-" + strings.ToLower(name)
			if k == "app_api_key_env" && ws["app_workspace_id"] != nil {
				vars[name] = "sa_live_readme-" + strings.ToLower(name)
			}
		}
	}
	return vars
}

// jsonKeys returns the JSON names of a struct type's fields.
func jsonKeys(v any) []string {
	var keys []string
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		keys = append(keys, name)
	}
	return keys
}

// TestReadmeWorkspacesExampleLoads: the README's example workspaces file
// loads, each workspace gets exactly the settings the example gives it, the
// example uses every key the loader knows and the README's key table names
// each of them, and a Customer.io client can be built for every workspace.
func TestReadmeWorkspacesExampleLoads(t *testing.T) {
	section, example := readmeWorkspacesExample(t)
	var doc struct {
		Workspaces map[string]map[string]any `json:"workspaces"`
	}
	if err := json.Unmarshal([]byte(example), &doc); err != nil {
		t.Fatalf("the README's example is not JSON: %v", err)
	}

	// Every key of the file: used in the example, named in the README.
	used := map[string]bool{}
	for _, ws := range doc.Workspaces {
		for k := range ws {
			used[k] = true
		}
	}
	for _, k := range jsonKeys(workspacesFile{}) {
		if !strings.Contains(section, "`"+k+"`") {
			t.Errorf("README's workspaces file section does not name the top-level key %q", k)
		}
	}
	var table []string // the first cell of each row of the key table
	for _, line := range strings.Split(section, "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 2 && strings.HasPrefix(line, "| `") {
			table = append(table, cells[1])
		}
	}
	for _, k := range jsonKeys(fileWorkspace{}) {
		if !used[k] {
			t.Errorf("README's example workspaces file does not use the key %q", k)
		}
		documented := false
		for _, c := range table {
			documented = documented || strings.Contains(c, "`"+k+"`")
		}
		if !documented {
			t.Errorf("README's table of workspace keys has no row for %q", k)
		}
	}

	vars := exampleEnv(t, example)
	cfg, err := Load(env(vars))
	if err != nil {
		t.Fatalf("the README's example workspaces file does not load: %v", err)
	}
	if len(cfg.Workspaces) != len(doc.Workspaces) {
		t.Fatalf("loaded %d workspaces, the example has %d", len(cfg.Workspaces), len(doc.Workspaces))
	}
	for name, ws := range doc.Workspaces {
		got, ok := cfg.Workspaces[name]
		if !ok {
			t.Errorf("workspace %q not loaded", name)
			continue
		}
		val := func(k string) string {
			if v, ok := ws[k].(string); ok {
				return v
			}
			if v, ok := ws[k+"_env"].(string); ok {
				return vars[v]
			}
			return ""
		}
		ordered, _ := ws["ordered"].(bool)
		want := Workspace{
			SiteID: val("site_id"), TrackAPIKey: val("track_api_key"), AppAPIKey: val("app_api_key"),
			AppWorkspaceID: val("app_workspace_id"), PipelinesWriteKey: val("pipelines_write_key"),
			Region: val("region"), TrackURL: val("track_url"), AppURL: val("app_url"), PipelinesURL: val("pipelines_url"),
			Ordered: ordered,
		}
		if got != want {
			t.Errorf("workspace %q loaded as\n %+v\nwant\n %+v", name, got, want)
		}
		if _, err := customerio.New(got.ClientConfig()); err != nil {
			t.Errorf("workspace %q: no Customer.io client: %v", name, err)
		}
	}
}

// TestWorkspacesFileRefusesUnknownKeys: a key the loader does not know, at
// the top level or in a workspace, stops start-up naming it (the README's
// example with one key added).
func TestWorkspacesFileRefusesUnknownKeys(t *testing.T) {
	_, example := readmeWorkspacesExample(t)
	for _, tc := range []struct{ name, file, key string }{
		{"top level", strings.Replace(example, `"workspaces": {`, `"workspace": {}, "workspaces": {`, 1), "workspace"},
		{"in a workspace", strings.Replace(example, `"region": "eu",`, `"region": "eu", "app_key": "k",`, 1), "app_key"},
		{"misspelt", strings.Replace(example, `"ordered": true`, `"orderd": true`, 1), "orderd"},
	} {
		if tc.file == example {
			t.Fatalf("%s: the README's example changed; cannot add the key", tc.name)
		}
		_, err := Load(env(exampleEnv(t, example, tc.file)))
		if err == nil || !strings.Contains(err.Error(), `"`+tc.key+`"`) || !strings.Contains(err.Error(), EnvWorkspacesFile) {
			t.Errorf("%s: Load = %v, want an error naming %s and %q", tc.name, err, EnvWorkspacesFile, tc.key)
		}
	}
}
