package probes_test

// Tests of the documentation: README.md and docs/*.md. Every Go snippet
// names the function it comes from and matches it, every relative link and
// anchor resolves, every page is reachable from the README and links back,
// and docs/example.md lists every flag of the example service.

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"os"
	mdpath "path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// docPages returns README.md and every docs/*.md, as slash paths relative
// to the repository root.
func docPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no docs/*.md")
	}
	for i := range pages {
		pages[i] = filepath.ToSlash(pages[i])
	}
	return append([]string{"README.md"}, pages...)
}

// docLine is one line of a markdown page, with where it stands.
type docLine struct {
	n      int    // line number, from 1
	text   string // the line as written
	fence  string // info string of the code block the line is in ("go"), "" outside one
	inCode bool   // inside a fenced code block (fence lines included)
}

// docReadMarkdown splits a page into lines and marks the fenced code blocks.
func docReadMarkdown(t *testing.T, page string) []docLine {
	t.Helper()
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	var (
		lines  []docLine
		open   string // the fence that opened the block: ``` or ~~~
		info   string
		inCode bool
	)
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		trim := strings.TrimSpace(text)
		switch {
		case !inCode && (strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~")):
			open, info, inCode = trim[:3], strings.TrimSpace(strings.TrimLeft(trim, trim[:1])), true
			lines = append(lines, docLine{n: n, text: text, fence: info, inCode: true})
			continue
		case inCode && strings.HasPrefix(trim, open) && strings.Trim(trim, open[:1]) == "":
			lines = append(lines, docLine{n: n, text: text, fence: info, inCode: true})
			inCode, info = false, ""
			continue
		}
		lines = append(lines, docLine{n: n, text: text, fence: info, inCode: inCode})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if inCode {
		t.Errorf("%s: a code block is never closed", page)
	}
	return lines
}

// docSnippet is one ```go block of a page and the source it names.
type docSnippet struct {
	page      string
	line      int      // line of the opening fence
	file, fn  string   // from the <!-- snippet: FILE FUNC --> comment; "" if none; fn "" with a file: the whole file
	lines     []string // the block's lines, trimmed, empty ones left out
	raw       []string // the block's lines as written
	annotated bool
}

var docSnippetComment = regexp.MustCompile(`^<!--\s*snippet:\s*(\S+)(?:\s+(\S+))?\s*-->$`)

// docGoSnippets returns the ```go blocks of page.
func docGoSnippets(t *testing.T, page string) []docSnippet {
	t.Helper()
	lines := docReadMarkdown(t, page)
	var out []docSnippet
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trim := strings.TrimSpace(l.text)
		if !l.inCode || l.fence != "go" || !(strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~")) {
			continue
		}
		s := docSnippet{page: page, line: l.n}
		for j := i - 1; j >= 0; j-- { // the last non-empty line before the fence
			if prev := strings.TrimSpace(lines[j].text); prev != "" {
				if m := docSnippetComment.FindStringSubmatch(prev); m != nil {
					s.file, s.fn, s.annotated = m[1], m[2], true
				}
				break
			}
		}
		for i++; i < len(lines); i++ {
			body := strings.TrimSpace(lines[i].text)
			if strings.HasPrefix(body, "```") || strings.HasPrefix(body, "~~~") {
				break
			}
			s.raw = append(s.raw, lines[i].text)
			if body != "" {
				s.lines = append(s.lines, body)
			}
		}
		out = append(out, s)
	}
	return out
}

// docFuncBody returns the lines of the body of the top-level function fn in
// the Go file, trimmed.
func docFuncBody(file, fn string) ([]string, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv != nil || fd.Name.Name != fn || fd.Body == nil {
			continue
		}
		body := string(src[fset.Position(fd.Body.Lbrace).Offset : fset.Position(fd.Body.Rbrace).Offset+1])
		var lines []string
		for l := range strings.SplitSeq(body, "\n") {
			lines = append(lines, strings.TrimSpace(l))
		}
		return lines, nil
	}
	return nil, fmt.Errorf("no function %s in %s", fn, file)
}

// TestDocSnippets checks that every Go snippet of the documentation is
// preceded by <!-- snippet: FILE FUNC --> and that its non-empty lines
// appear, in order, as lines of that function's body, or by
// <!-- snippet: FILE --> and is that whole file, so that every snippet is
// code that compiles with the tests.
func TestDocSnippets(t *testing.T) {
	total := 0
	for _, page := range docPages(t) {
		for _, s := range docGoSnippets(t, page) {
			total++
			where := fmt.Sprintf("%s:%d", s.page, s.line)
			if !s.annotated {
				t.Errorf("%s: a ```go block without a <!-- snippet: FILE FUNC --> comment right above it", where)
				continue
			}
			if filepath.IsAbs(s.file) || !filepath.IsLocal(s.file) || !strings.HasSuffix(s.file, ".go") {
				t.Errorf("%s: snippet source %q: want a .go file inside the repository", where, s.file)
				continue
			}
			if s.fn == "" { // the whole file, as it is
				raw, err := os.ReadFile(s.file)
				if err != nil {
					t.Errorf("%s: %v", where, err)
				} else if got, want := strings.Join(s.raw, "\n"), strings.TrimRight(string(raw), "\n"); got != want {
					t.Errorf("%s: the block is not %s as it is; copy the file into it", where, s.file)
				}
				continue
			}
			body, err := docFuncBody(s.file, s.fn)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if len(s.lines) == 0 {
				t.Errorf("%s: an empty snippet", where)
				continue
			}
			at := 0
			for _, want := range s.lines {
				i := slices.Index(body[at:], want)
				if i < 0 {
					why := "not in it"
					if slices.Contains(body, want) {
						why = "there, but not in this order"
					}
					t.Errorf("%s: snippet line %q: %s of %s %s", where, want, why, s.file, s.fn)
					break
				}
				at += i + 1
			}
		}
	}
	if total == 0 {
		t.Error("got no Go snippet in the documentation, want some")
	}
}

var (
	// docLinkRE matches an inline link or image: [text](target) or
	// [text](target "title").
	docLinkRE = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// docCodeSpanRE matches inline code, whose text is not markdown.
	docCodeSpanRE = regexp.MustCompile("`+[^`]*`+")
	// docAnchorRE matches an explicit anchor.
	docAnchorRE  = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	docHeadingRE = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
)

// docSlug turns a heading into its anchor as GitHub makes it: lower case,
// punctuation dropped except '-' and '_', each space a '-'.
func docSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// docAnchors returns the anchors of a page: its headings' slugs (a repeated
// one numbered as GitHub numbers it: x, x-1, x-2) and explicit <a id>s.
func docAnchors(t *testing.T, page string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	seen := map[string]int{}
	for _, l := range docReadMarkdown(t, page) {
		if l.inCode {
			continue
		}
		for _, m := range docAnchorRE.FindAllStringSubmatch(l.text, -1) {
			got[m[1]] = true
		}
		m := docHeadingRE.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		s := docSlug(m[2])
		if n := seen[s]; n > 0 {
			got[s+"-"+strconv.Itoa(n)] = true
		} else {
			got[s] = true
		}
		seen[s]++
	}
	return got
}

// TestDocLinks checks every link of the documentation: a relative path must
// exist, an anchor must be one of the target page's headings, and an
// http(s) URL must be well formed (it is not fetched).
func TestDocLinks(t *testing.T) {
	cache := map[string]map[string]bool{}
	anchorsOf := func(page string) map[string]bool {
		if a, ok := cache[page]; ok {
			return a
		}
		cache[page] = docAnchors(t, page)
		return cache[page]
	}
	total := 0
	for _, page := range docPages(t) {
		for _, l := range docReadMarkdown(t, page) {
			if l.inCode {
				continue
			}
			for _, m := range docLinkRE.FindAllStringSubmatch(docCodeSpanRE.ReplaceAllString(l.text, ""), -1) {
				total++
				target := m[1]
				where := fmt.Sprintf("%s:%d: link %q", page, l.n, target)
				if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
					u, err := url.Parse(target)
					switch {
					case err != nil:
						t.Errorf("%s: %v", where, err)
					case u.Host == "" || strings.ContainsAny(target, " <>\""):
						t.Errorf("%s: not a well-formed URL", where)
					}
					continue
				}
				if strings.Contains(target, ":") {
					t.Errorf("%s: want a relative path or an http(s) URL", where)
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				dest := page
				if file != "" {
					dest = mdpath.Join(mdpath.Dir(page), file)
					if !filepath.IsLocal(filepath.FromSlash(dest)) {
						t.Errorf("%s: points outside the repository", where)
						continue
					}
					if _, err := os.Stat(filepath.FromSlash(dest)); err != nil {
						t.Errorf("%s: %s does not exist", where, dest)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(dest, ".md") {
					t.Errorf("%s: an anchor into %s, which is not a markdown page", where, dest)
					continue
				}
				if !anchorsOf(dest)[anchor] {
					t.Errorf("%s: %s has no heading with anchor #%s", where, dest, anchor)
				}
			}
		}
	}
	if total == 0 {
		t.Error("got no link in the documentation, want some")
	}
}

// TestDocPagesLinked checks that the README links to every page of docs/
// and that every page links back to the README, so that everything is one
// click from the front page.
func TestDocPagesLinked(t *testing.T) {
	linksOf := func(page string) map[string]bool {
		got := map[string]bool{}
		for _, l := range docReadMarkdown(t, page) {
			if l.inCode {
				continue
			}
			for _, m := range docLinkRE.FindAllStringSubmatch(docCodeSpanRE.ReplaceAllString(l.text, ""), -1) {
				file, _, _ := strings.Cut(m[1], "#")
				if file != "" && !strings.Contains(file, ":") {
					got[mdpath.Join(mdpath.Dir(page), file)] = true
				}
			}
		}
		return got
	}
	fromReadme := linksOf("README.md")
	for _, page := range docPages(t)[1:] {
		if !fromReadme[page] {
			t.Errorf("README.md does not link to %s", page)
		}
		if !linksOf(page)["README.md"] {
			t.Errorf("%s does not link back to the README", page)
		}
	}
}

func TestDocSlug(t *testing.T) {
	for _, c := range []struct{ title, want string }{
		{"Quick start", "quick-start"},
		{"Metrics (`./metrics`)", "metrics-metrics"},
		{"The aggregate and a check's own path", "the-aggregate-and-a-checks-own-path"},
		{"Recovering fast: Recheck and Trigger", "recovering-fast-recheck-and-trigger"},
		{"cmd/probelint", "cmdprobelint"},
		{"snake_case and  two spaces", "snake_case-and--two-spaces"},
		{`Why the ratio to "200 ok" is missed, and what would change it`, "why-the-ratio-to-200-ok-is-missed-and-what-would-change-it"},
	} {
		if got := docSlug(c.title); got != c.want {
			t.Errorf("docSlug(%q) = %q, want %q", c.title, got, c.want)
		}
	}
}

// docExampleFlags returns the names of the flags example/main.go defines: the
// name argument of every fs.XxxVar, fs.Var, fs.Xxx and fs.Func call, read
// from a string literal or, in a loop over a slice of struct literals, from
// the field the call names.
func docExampleFlags(t *testing.T) []string {
	t.Helper()
	const file = "example/main.go"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	// The slices of struct literals assigned in the file, by variable name.
	slicesByName := map[string]*ast.CompositeLit{}
	ast.Inspect(f, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
			for i, lhs := range as.Lhs {
				id, ok1 := lhs.(*ast.Ident)
				cl, ok2 := as.Rhs[i].(*ast.CompositeLit)
				if ok1 && ok2 {
					slicesByName[id.Name] = cl
				}
			}
		}
		return true
	})
	// The range loops: loop variable -> the slice it ranges over.
	rangeOver := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if rs, ok := n.(*ast.RangeStmt); ok {
			v, ok1 := rs.Value.(*ast.Ident)
			x, ok2 := rs.X.(*ast.Ident)
			if ok1 && ok2 {
				rangeOver[v.Name] = x.Name
			}
		}
		return true
	})

	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if recv, ok := sel.X.(*ast.Ident); !ok || recv.Name != "fs" {
			return true
		}
		method := sel.Sel.Name
		arg := 0 // fs.String("name", ...), fs.Func("name", ...)
		switch {
		case strings.HasSuffix(method, "Var"): // fs.StringVar(&p, "name", ...), fs.Var(v, "name", ...)
			arg = 1
		case slices.Contains([]string{"String", "Int", "Int64", "Uint", "Uint64", "Bool", "Duration", "Float64", "Func", "BoolFunc"}, method):
		default:
			return true // Parse, SetOutput, Args, ...
		}
		where := fset.Position(call.Pos())
		if len(call.Args) <= arg {
			t.Errorf("%s: fs.%s with %d arguments", where, method, len(call.Args))
			return true
		}
		switch a := call.Args[arg].(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(a.Value)
			if err != nil || a.Kind != token.STRING {
				t.Errorf("%s: fs.%s: flag name %s is not a string", where, method, a.Value)
				return true
			}
			names = append(names, s)
		case *ast.SelectorExpr: // d.flag, in a loop over a slice of struct literals
			v, ok := a.X.(*ast.Ident)
			lit := slicesByName[rangeOver[v.Name]]
			if !ok || lit == nil {
				t.Errorf("%s: fs.%s: cannot tell where the flag names in %s.%s come from", where, method, v.Name, a.Sel.Name)
				return true
			}
			from, err := docFieldValues(lit, a.Sel.Name)
			if err != nil {
				t.Errorf("%s: fs.%s: %v", where, method, err)
				return true
			}
			names = append(names, from...)
		default:
			t.Errorf("%s: fs.%s: cannot read the flag name of a %T", where, method, a)
		}
		return true
	})
	return names
}

// docFieldValues returns the string values of field in each element of lit, a
// slice of struct literals written positionally or with keys.
func docFieldValues(lit *ast.CompositeLit, field string) ([]string, error) {
	at, ok := lit.Type.(*ast.ArrayType)
	if !ok {
		return nil, fmt.Errorf("not a slice literal")
	}
	st, ok := at.Elt.(*ast.StructType)
	if !ok {
		return nil, fmt.Errorf("not a slice of struct literals")
	}
	index := -1
	i := 0
	for _, fl := range st.Fields.List {
		for _, n := range fl.Names {
			if n.Name == field {
				index = i
			}
			i++
		}
	}
	if index < 0 {
		return nil, fmt.Errorf("no field %s", field)
	}
	var out []string
	for _, e := range lit.Elts {
		el, ok := e.(*ast.CompositeLit)
		if !ok {
			return nil, fmt.Errorf("an element that is not a struct literal")
		}
		var v ast.Expr
		for j, x := range el.Elts {
			if kv, ok := x.(*ast.KeyValueExpr); ok {
				if k, ok := kv.Key.(*ast.Ident); ok && k.Name == field {
					v = kv.Value
				}
			} else if j == index {
				v = x
			}
		}
		bl, ok := v.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return nil, fmt.Errorf("field %s of an element is not a string literal", field)
		}
		s, err := strconv.Unquote(bl.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// TestExampleFlagsDocumented checks that every flag example/main.go
// defines has a row "| `-name` |" in the table of docs/example.md, and that
// every row names a flag the example has.
func TestExampleFlagsDocumented(t *testing.T) {
	flags := docExampleFlags(t)
	if len(flags) < 10 {
		t.Fatalf("got %d flags in example/main.go (%v), want at least 10: is the parser missing some?", len(flags), flags)
	}
	b, err := os.ReadFile("docs/example.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	row := regexp.MustCompile("(?m)^\\|\\s*`-([a-z0-9-]+)`\\s*\\|")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		documented = append(documented, m[1])
	}
	if len(documented) == 0 {
		t.Fatal("docs/example.md: got no flag table rows (| `-name` | ...), want one per flag")
	}
	for _, name := range flags {
		if !slices.Contains(documented, name) {
			t.Errorf("flag -%s of example/main.go: no row \"| `-%s` |\" in the table of docs/example.md", name, name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(flags, name) {
			t.Errorf("docs/example.md: a row for -%s, which example/main.go does not define", name)
		}
	}
}
