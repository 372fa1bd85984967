package internal

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// module is the module path of go.mod.
const module = "github.com/cioq/cioq"

// allowed maps each package of the module (relative to the module root; a
// trailing "/..." covers the packages below) to what its non-test code may
// import of the module. A package the table does not cover fails the test:
// adding a package means deciding its place here. Dependencies point one
// way: cmd → ingest → producer → contracts → tasks → customerio, cmd →
// outbox → producer, and cmd → worker → contracts, tasks, customerio;
// producer and worker → status → tasks.
var allowed = []struct{ pkg, may string }{
	{"customerio", ""}, // imports nothing of ours
	{"customerio/sandbox", "customerio"},
	{"tasks", "customerio"},
	// Contracts: pure checks of tasks (and Pull, through the client).
	{"contracts", "tasks customerio"},
	// Delivery status after Customer.io's 2xx: the timelines, the
	// reporting webhook receiver.
	{"status", "tasks customerio internal/..."},
	{"producer", "contracts status tasks customerio internal/..."},
	{"worker", "worker/... contracts status tasks customerio internal/..."},
	{"worker/...", "worker/... tasks customerio internal/..."},
	{"ingest", "producer contracts status tasks customerio internal/..."},
	// The transactional outbox writes prepared tasks into PostgreSQL and
	// relays them into Redis through the producer.
	{"outbox", "producer contracts status tasks customerio internal/..."},
	// Leaves: each other, and customerio (with its sandbox) for test support.
	{"internal", ""},
	// The operator's side (dashboard, metrics): its timeline page reads the
	// timelines of status, which itself imports only internal/keys of these.
	{"internal/ops", "internal/... status customerio customerio/sandbox"},
	{"internal/...", "internal/... customerio customerio/sandbox"},
	// The binary and its own parts may import anything of the module.
	{"cmd/cioq", "..."},
	{"cmd/cioq/internal/...", "..."},
}

// match reports whether the relative package path p matches pattern pat.
func match(pat, p string) bool {
	switch {
	case pat == "...":
		return true
	case strings.HasSuffix(pat, "/..."):
		return strings.HasPrefix(p, strings.TrimSuffix(pat, "...")) // below it, not itself
	}
	return p == pat
}

// pkgImports are one directory's imports of the module, relative to its root.
type pkgImports struct{ code, tests []string }

// moduleImports parses the import blocks of every Go file of the module
// below root (no type checking, no go command: it takes milliseconds).
func moduleImports(t *testing.T, root string) map[string]*pkgImports {
	t.Helper()
	pkgs := map[string]*pkgImports{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		p := pkgs[rel]
		if p == nil {
			p = &pkgImports{}
			pkgs[rel] = p
		}
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			if ip != module && !strings.HasPrefix(ip, module+"/") {
				continue
			}
			ip = strings.TrimPrefix(strings.TrimPrefix(ip, module), "/")
			if strings.HasSuffix(name, "_test.go") {
				p.tests = append(p.tests, ip)
			} else {
				p.code = append(p.code, ip)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestLayers: every package of the module imports only what its layer may
// (the table above); no package outside cmd/ imports cmd/..., not even in
// its tests; and every package under internal/ is used outside cmd/ (one
// only the binary uses belongs under cmd/cioq/internal).
func TestLayers(t *testing.T) {
	pkgs := moduleImports(t, "..")
	for _, must := range []string{"customerio", "tasks", "producer", "worker", "ingest", "cmd/cioq", "internal/redisconf"} {
		if pkgs[must] == nil {
			t.Fatalf("found no package %s: is the module root ..?", must)
		}
	}
	usedOutsideCmd := map[string]bool{}
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		imps := pkgs[p]
		rule := -1
		for i, a := range allowed {
			if match(a.pkg, p) {
				rule = i
				break
			}
		}
		if rule < 0 {
			t.Errorf("package %s has no row in the layers table: decide what it may import", p)
			continue
		}
		for _, ip := range imps.code {
			ok := false
			for _, pat := range strings.Fields(allowed[rule].may) {
				ok = ok || match(pat, ip)
			}
			if !ok {
				t.Errorf("%s imports %s; its layer may import only %q", p, ip, allowed[rule].may)
			}
		}
		inCmd := p == "cmd" || strings.HasPrefix(p, "cmd/")
		for _, ip := range append(append([]string(nil), imps.code...), imps.tests...) {
			if !inCmd && (ip == "cmd" || strings.HasPrefix(ip, "cmd/")) {
				t.Errorf("%s imports %s: nothing outside cmd/ may import the binary's packages", p, ip)
			}
			if !inCmd && ip != p {
				usedOutsideCmd[ip] = true
			}
		}
	}
	for _, p := range names {
		if strings.HasPrefix(p, "internal/") && !usedOutsideCmd[p] {
			t.Errorf("%s is imported only under cmd/: move it to cmd/cioq/internal", p)
		}
	}
}

// public are the packages users import (with the packages below them).
var public = []string{"customerio", "tasks", "contracts", "producer", "worker", "ingest", "outbox", "status"}

// TestPublicAPIMentionsNoInternalType: no exported function, method, type
// or struct field of a public package mentions a type of a package under
// internal/, which users could not name (as worker.ConfigFrom took an
// *internal/config.Config).
func TestPublicAPIMentionsNoInternalType(t *testing.T) {
	for _, pub := range public {
		err := filepath.WalkDir(filepath.Join("..", pub), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "testdata") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			internal := map[string]string{} // local name → import path of an internal package
			for _, imp := range f.Imports {
				ip := strings.Trim(imp.Path.Value, `"`)
				if !strings.Contains(ip+"/", "/internal/") {
					continue
				}
				name := ip[strings.LastIndex(ip, "/")+1:]
				if imp.Name != nil {
					name = imp.Name.Name
				}
				internal[name] = ip
			}
			if len(internal) == 0 {
				return nil
			}
			check := func(where string, n ast.Node) {
				ast.Inspect(n, func(n ast.Node) bool {
					if sel, ok := n.(*ast.SelectorExpr); ok {
						if x, ok := sel.X.(*ast.Ident); ok && internal[x.Name] != "" {
							t.Errorf("%s: exported %s mentions %s.%s of %s", filepath.ToSlash(path), where, x.Name, sel.Sel.Name, internal[x.Name])
						}
					}
					return true
				})
			}
			for _, decl := range f.Decls {
				switch decl := decl.(type) {
				case *ast.FuncDecl:
					if decl.Name.IsExported() && (decl.Recv == nil || exportedRecv(decl.Recv)) {
						check(decl.Name.Name, decl.Type)
					}
				case *ast.GenDecl:
					for _, spec := range decl.Specs {
						switch spec := spec.(type) {
						case *ast.TypeSpec:
							if spec.Name.IsExported() {
								checkExportedParts(spec.Name.Name, spec.Type, check)
							}
						case *ast.ValueSpec:
							for _, n := range spec.Names {
								if n.IsExported() && spec.Type != nil {
									check(n.Name, spec.Type)
								}
							}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(recv *ast.FieldList) bool {
	if len(recv.List) == 0 {
		return false
	}
	typ := recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if ix, ok := typ.(*ast.IndexExpr); ok { // generic receiver T[P]
		typ = ix.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}

// checkExportedParts checks an exported type: a struct's exported fields
// (and embedded types), an interface's methods, or the whole type.
func checkExportedParts(name string, typ ast.Expr, check func(string, ast.Node)) {
	st, ok := typ.(*ast.StructType)
	if !ok {
		check(name, typ)
		return
	}
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 {
			check(name+" (embedded)", f.Type)
		}
		for _, n := range f.Names {
			if n.IsExported() {
				check(name+"."+n.Name, f.Type)
			}
		}
	}
}
