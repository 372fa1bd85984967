package contracts

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/osteele/liquid/parser"
	"github.com/osteele/liquid/render"
	"github.com/osteele/liquid/tags"
)

// Part is one piece of a template's Liquid (a subject, body or preheader of
// one language), named for error messages.
type Part struct {
	// Name says which piece it is, e.g. "body (fr)".
	Name string
	// Source is the Liquid text.
	Source string
}

// TemplateVariables returns the message_data variables the Liquid of parts
// uses: every {{ trigger.<path> }} a send must carry, by path ("order.id",
// "items[].price" for a key of the elements of a loop's array), with what
// the template tells of each:
//
//   - a variable a part outputs ({{ trigger.reset_link }}, also through
//     filters or an assign) is required;
//   - one with a default filter ({{ trigger.name | default: "there" }}),
//     one only tested in a condition ({% if trigger.coupon %}), and one
//     used only inside a conditional branch, a filter argument or a loop
//     parameter is optional (the branch may not render; a missing filter
//     argument renders as nothing);
//   - the array a {% for item in trigger.items %} loops over has type
//     array and is optional (a loop over nothing renders nothing), while
//     what the loop body outputs of each element (item.price) is required
//     of every element: items[].price;
//   - an index ([0], .first, .last, .size) ends a path: the variable is
//     the array, optional.
//
// Variables of customer, event and other objects are not message_data and
// are not returned. A part that does not parse is an error naming it and
// the line.
func TemplateVariables(parts ...Part) (map[string]*Variable, error) {
	w := &walker{vars: map[string]*Variable{}, aliases: map[string]alias{}, locals: map[string]bool{}}
	for _, p := range parts {
		if strings.TrimSpace(p.Source) == "" {
			continue
		}
		name := p.Name
		if name == "" {
			name = "the template"
		}
		root, err := liquidConfig().Parse(p.Source, parser.SourceLoc{Pathname: name, LineNo: 1})
		if err != nil {
			// With a path set, the parser's text names it, not the source.
			return nil, fmt.Errorf("contracts: %w", err)
		}
		w.node(root, nil, false)
	}
	return w.vars, nil
}

// liquidConfig is a parser configuration with Liquid's standard tags
// (the parser must know which tags open blocks).
func liquidConfig() render.Config {
	cfg := render.NewConfig()
	tags.AddStandardTags(cfg)
	return cfg
}

// walker collects the variables of one template's parts.
type walker struct {
	vars    map[string]*Variable
	aliases map[string]alias // {% assign x = trigger.a %}: Liquid's assigns are global
	locals  map[string]bool  // captures and computed assigns: not message_data
}

// alias is an assigned variable naming a message_data path.
type alias struct {
	path      []seg
	defaulted bool // its value has a default, or was assigned in a branch
}

// loopScope binds a loop variable to the elements of a path.
type loopScope struct {
	parent *loopScope
	name   string
	path   []seg // ends with the array's step, each set; nil for a range
}

// Notes pull writes on optional variables.
const (
	noteDefault   = "has a default"
	noteCondition = "only tested in a condition or used in a branch"
	noteLoop      = "looped over: may be missing or empty"
	noteArgument  = "only a filter argument or loop parameter"
	noteIndexed   = "indexed (first, last, size or [n])"
)

func (w *walker) node(n parser.ASTNode, loops *loopScope, cond bool) {
	switch n := n.(type) {
	case *parser.ASTSeq:
		for _, c := range n.Children {
			w.node(c, loops, cond)
		}
	case *parser.ASTObject:
		w.refs(n.Args, loops, cond, false)
	case *parser.ASTTag:
		switch n.Name {
		case "assign":
			w.assign(n.Args, loops, cond)
		case "cycle", "increment", "decrement", "include", "echo":
			w.refs(n.Args, loops, true, false)
		}
	case *parser.ASTBlock:
		w.block(n, loops, cond)
	}
}

func (w *walker) block(n *parser.ASTBlock, loops *loopScope, cond bool) {
	switch n.Name {
	case "comment", "raw":
		return
	case "for", "tablerow":
		w.loop(n, loops, cond)
		return
	case "capture":
		w.locals[strings.TrimSpace(n.Args)] = true
		for _, c := range n.Body {
			w.node(c, loops, cond)
		}
		return
	}
	// if, unless, case and anything else: what they test is optional, and
	// so is what their branches use.
	w.refs(n.Args, loops, true, true)
	for _, c := range n.Body {
		w.node(c, loops, true)
	}
	for _, cl := range n.Clauses {
		w.refs(cl.Args, loops, true, true)
		for _, c := range cl.Body {
			w.node(c, loops, true)
		}
	}
}

var (
	loopArgs   = regexp.MustCompile(`^\s*([A-Za-z_][\w-]*)\s+in\s+(.+)$`)
	assignArgs = regexp.MustCompile(`^\s*([A-Za-z_][\w-]*)\s*=\s*(.*)$`)
)

// loop handles {% for item in <collection> [params] %}.
func (w *walker) loop(n *parser.ASTBlock, loops *loopScope, cond bool) {
	m := loopArgs.FindStringSubmatch(n.Args)
	scope := &loopScope{parent: loops}
	if m != nil {
		scope.name = m[1]
		refs := scanExpr(m[2])
		rest := strings.TrimSpace(m[2])
		if len(refs) > 0 && !strings.HasPrefix(rest, "(") {
			coll := refs[0]
			if p, _, ok := w.resolve(coll, loops); ok && !coll.indexed {
				w.record(p, TypeArray, false, noteLoop)
				scope.path = append(slices.Clone(p[:len(p)-1]), seg{key: p[len(p)-1].key, each: true})
			} else if ok {
				w.record(p, "", false, noteIndexed)
			}
			refs = refs[1:]
		}
		for _, r := range refs {
			w.ref(r, loops, true, noteArgument)
		}
	}
	for _, c := range n.Body {
		w.node(c, scope, cond)
	}
	for _, cl := range n.Clauses { // {% else %}: rendered when the loop has nothing
		for _, c := range cl.Body {
			w.node(c, loops, true)
		}
	}
}

// assign handles {% assign x = <expr> %}: x aliases the expression's path.
func (w *walker) assign(args string, loops *loopScope, cond bool) {
	m := assignArgs.FindStringSubmatch(args)
	if m == nil {
		return
	}
	name := m[1]
	refs := scanExpr(m[2])
	var main *exprRef
	for i := range refs {
		if !refs[i].arg && main == nil {
			main = &refs[i]
			continue
		}
		w.ref(refs[i], loops, true, noteArgument)
	}
	if main == nil {
		w.locals[name] = true
		delete(w.aliases, name)
		return
	}
	if p, defaulted, ok := w.resolve(*main, loops); ok {
		w.aliases[name] = alias{path: p, defaulted: defaulted || main.defaulted || main.indexed || cond}
		delete(w.locals, name)
		return
	}
	w.locals[name] = true
}

// refs records the variables of an expression.
func (w *walker) refs(expr string, loops *loopScope, cond, condition bool) {
	note := noteCondition
	for _, r := range scanExpr(expr) {
		switch {
		case r.arg:
			w.ref(r, loops, true, noteArgument)
		default:
			w.ref(r, loops, cond || condition, note)
		}
	}
}

// ref records one reference: required unless optional, defaulted or
// indexed.
func (w *walker) ref(r exprRef, loops *loopScope, optional bool, note string) {
	p, defaulted, ok := w.resolve(r, loops)
	if !ok {
		return
	}
	switch {
	case r.defaulted:
		optional, note = true, noteDefault
	case defaulted:
		optional, note = true, noteDefault
	case r.indexed:
		optional, note = true, noteIndexed
	}
	w.record(p, "", !optional, note)
}

// resolve maps a reference to a message_data path: trigger.<path>, a loop
// variable's element, or an alias. ok is false for anything else
// (customer, event, forloop, captures, ...). defaulted reports an alias
// with a default.
func (w *walker) resolve(r exprRef, loops *loopScope) (p []seg, defaulted, ok bool) {
	var base []seg
	found := false
	for l := loops; l != nil; l = l.parent {
		if l.name == r.root {
			if l.path == nil {
				return nil, false, false // a range's numbers
			}
			base, found = l.path, true
			break
		}
	}
	if !found {
		switch a, isAlias := w.aliases[r.root]; {
		case isAlias:
			base, defaulted = a.path, a.defaulted
		case w.locals[r.root]:
			return nil, false, false
		case r.root == "trigger":
			if len(r.rest) == 0 {
				return nil, false, false
			}
		default:
			return nil, false, false
		}
	}
	p = slices.Clone(base)
	for _, k := range r.rest {
		if strings.Contains(k, ".") {
			return nil, false, false // a key with a dot has no path
		}
		p = append(p, seg{key: k})
	}
	if len(p) == 0 {
		return nil, false, false
	}
	if last := &p[len(p)-1]; last.each {
		// The element itself ({{ item }}): the array, which is all a
		// path can say.
		last.each = false
		return p, true, true
	}
	return p, defaulted, true
}

// record adds a variable: required if any use requires it; an array if
// any use loops over it.
func (w *walker) record(p []seg, typ string, required bool, note string) {
	key := pathString(p)
	v, seen := w.vars[key]
	if !seen {
		v = &Variable{Type: TypeAny, Optional: true}
		w.vars[key] = v
	}
	if typ != "" {
		v.Type = typ
	}
	if required {
		v.Optional, v.Note = false, ""
	} else if v.Optional && v.Note == "" {
		v.Note = note
	}
}

// exprRef is a variable reference in a Liquid expression.
type exprRef struct {
	root      string   // the first name: trigger, item, customer, ...
	rest      []string // the keys after it
	defaulted bool     // the expression has a default filter (for the main value)
	arg       bool     // a filter argument (or named parameter)
	indexed   bool     // the path stopped at [n], .first, .last or .size
}

// xtok is a token of a Liquid expression.
type xtok struct {
	kind byte // 'i' identifier, 's' string, 'n' number, 'p' punctuation
	text string
}

var keywords = map[string]bool{
	"and": true, "or": true, "not": true, "contains": true, "true": true, "false": true,
	"nil": true, "null": true, "empty": true, "blank": true, "in": true, "reversed": true,
}

// lex splits a Liquid expression into tokens.
func lex(s string) []xtok {
	var out []xtok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				j = len(s) - i - 1
			}
			out = append(out, xtok{'s', s[i+1 : i+1+j]})
			i += j + 2
		case c >= '0' && c <= '9' || c == '-' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' && j+1 < len(s) && s[j+1] >= '0' && s[j+1] <= '9') {
				j++
			}
			out = append(out, xtok{'n', s[i:j]})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '-' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j < len(s) && s[j] == '?' {
				j++
			}
			out = append(out, xtok{'i', s[i:j]})
			i = j
		case c == '.' && i+1 < len(s) && s[i+1] == '.':
			out = append(out, xtok{'p', ".."})
			i += 2
		default:
			out = append(out, xtok{'p', string(c)})
			i++
		}
	}
	return out
}

// scanExpr returns the variable references of a Liquid expression (an
// output's, a condition's, a loop's or an assign's right side), with
// filters told apart from variables.
func scanExpr(s string) []exprRef {
	toks := lex(s)
	refs := scanTokens(toks, false)
	// A default filter anywhere in the chain covers the main value.
	defaulted := false
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].kind == 'p' && toks[i].text == "|" && toks[i+1].kind == 'i' && toks[i+1].text == "default" {
			defaulted = true
		}
	}
	if defaulted {
		for i := range refs {
			if !refs[i].arg {
				refs[i].defaulted = true
			}
		}
	}
	return refs
}

func scanTokens(toks []xtok, inArg bool) []exprRef {
	var refs []exprRef
	arg := inArg
	for i := 0; i < len(toks); {
		t := toks[i]
		switch {
		case t.kind == 'p' && t.text == "|":
			arg = true
			i += 2 // the filter's name
			continue
		case t.kind != 'i' || keywords[t.text]:
			i++
			continue
		case i+1 < len(toks) && toks[i+1].kind == 'p' && toks[i+1].text == ":":
			i += 2 // a named parameter (limit: 3, allow_false: true)
			continue
		}
		r := exprRef{root: t.text, arg: arg}
		i++
		stopped := false
		for i < len(toks) && toks[i].kind == 'p' {
			switch toks[i].text {
			case ".":
				if i+1 >= len(toks) || toks[i+1].kind != 'i' {
					i++
					stopped = true
					continue
				}
				k := toks[i+1].text
				i += 2
				if stopped {
					continue
				}
				if k == "first" || k == "last" || k == "size" {
					r.indexed, stopped = true, true
					continue
				}
				r.rest = append(r.rest, k)
				continue
			case "[":
				end := matching(toks, i)
				inner := toks[i+1 : end]
				i = end + 1
				if stopped {
					continue
				}
				if len(inner) == 1 && inner[0].kind == 's' {
					r.rest = append(r.rest, inner[0].text)
					continue
				}
				if !(len(inner) == 1 && inner[0].kind == 'n') {
					refs = append(refs, scanTokens(inner, true)...)
				}
				r.indexed, stopped = true, true
				continue
			}
			break
		}
		refs = append(refs, r)
	}
	return refs
}

// matching returns the index of the "]" closing the "[" at i (the end
// when there is none).
func matching(toks []xtok, i int) int {
	depth := 0
	for j := i; j < len(toks); j++ {
		if toks[j].kind != 'p' {
			continue
		}
		switch toks[j].text {
		case "[":
			depth++
		case "]":
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return len(toks)
}
