package tasks_test

import (
	"go/doc/comment"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/cioq/cioq/tasks"
)

// docExamples returns the example payload of every "# <type>" section of
// the package documentation in doc.go.
func docExamples(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	text := f.Doc.Text()
	var p comment.Parser
	d := p.Parse(text)
	out := map[string]string{}
	current := ""
	for _, b := range d.Content {
		switch b := b.(type) {
		case *comment.Heading:
			var sb strings.Builder
			for _, x := range b.Text {
				if pl, ok := x.(comment.Plain); ok {
					sb.WriteString(string(pl))
				}
			}
			current = sb.String()
			if !strings.Contains(current, ":") {
				current = ""
			}
		case *comment.Code:
			if current != "" {
				if _, dup := out[current]; dup {
					t.Errorf("doc.go: section %s has more than one example", current)
				}
				out[current] = b.Text
			}
		}
	}
	return out
}

func TestDocExamplesDecodeAndValidate(t *testing.T) {
	examples := docExamples(t)
	for _, spec := range tasks.Types() {
		if _, ok := examples[spec.Type]; !ok {
			t.Errorf("doc.go has no example for %s", spec.Type)
		}
	}
	for typ, js := range examples {
		t.Run(typ, func(t *testing.T) {
			env, p, err := tasks.Decode(typ, []byte(js))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if env.V != 1 {
				t.Errorf("bare payload read as version %d", env.V)
			}
			if p.TaskType() != typ {
				t.Errorf("TaskType() = %q, want %q", p.TaskType(), typ)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			// The example also survives a round trip through an envelope.
			b, err := tasks.Encode(p, tasks.Meta{Workspace: "eu"})
			if err != nil {
				t.Fatal(err)
			}
			env2, p2, err := tasks.Decode(typ, b)
			if err != nil {
				t.Fatalf("Decode(Encode(example)): %v", err)
			}
			if env2.Workspace != "eu" || env2.EnqueuedAt == 0 {
				t.Errorf("envelope = %+v", env2)
			}
			if err := p2.Validate(); err != nil {
				t.Fatalf("Validate after round trip: %v", err)
			}
		})
	}
}
