package main

// Reading a document as the API server does: the values the linter judges
// must be the values the API server keeps.

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	yamlv2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"
)

// maxAliased is how many nodes aliases may add to a document: enough for
// any manifest, too few for a document built to exhaust memory.
const maxAliased = 100_000

// resolveDoc returns the document n as the API server's YAML-to-JSON
// conversion reads it (sigs.k8s.io/yaml, built on YAML 1.1's go-yaml v2):
// aliases replaced by what they name, merge keys (<<) by the keys they
// merge. The result has no alias and no merge key, and shares the nodes
// that aliases repeat. It fails, naming the line, on a key set twice in a
// mapping, on a merge key that would override a key written before it (the
// conversion lets the merge win, the YAML specification the key: the
// reader and the API server would disagree), on a merge of anything but
// mappings, on an alias that contains itself, and on aliases that expand
// the document by more than maxAliased nodes.
func resolveDoc(n *yaml.Node) (*yaml.Node, error) {
	r := resolver{done: map[*yaml.Node]*yaml.Node{}, active: map[*yaml.Node]bool{}}
	out, err := r.node(n)
	if err != nil {
		return nil, err
	}
	if size(out, map[*yaml.Node]int{})-size(n, map[*yaml.Node]int{}) > maxAliased {
		return nil, fmt.Errorf("%d: aliases expand the document by more than %d nodes", n.Line, maxAliased)
	}
	return out, nil
}

type resolver struct {
	done   map[*yaml.Node]*yaml.Node // resolved nodes, by their original
	active map[*yaml.Node]bool       // nodes being resolved: an alias to one is a cycle
	merged int                       // nodes merge keys copied, bounded as aliases are
}

// size counts the nodes of the tree at n, shared ones as often as they
// appear (as the conversion writes them out), saturating.
func size(n *yaml.Node, memo map[*yaml.Node]int) int {
	if s, ok := memo[n]; ok {
		return s
	}
	s := 1
	for _, c := range n.Content {
		s = min(s+size(c, memo), math.MaxInt/2)
	}
	memo[n] = s
	return s
}

func (r *resolver) node(n *yaml.Node) (*yaml.Node, error) {
	if out, ok := r.done[n]; ok {
		return out, nil
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, fmt.Errorf("%d: unknown anchor %q", n.Line, n.Value)
		}
		if r.active[n.Alias] {
			return nil, fmt.Errorf("%d: alias *%s contains itself", n.Line, n.Value)
		}
		return r.node(n.Alias)
	}
	r.active[n] = true
	defer delete(r.active, n)
	var out *yaml.Node
	var err error
	if n.Kind == yaml.MappingNode {
		out, err = r.mapping(n)
	} else {
		out = new(yaml.Node)
		*out = *n
		out.Anchor = "" // written once for every repetition, it would be redefined
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Value == "" {
			out.Value = "null" // an empty value, which written out again would read as ""
		}
		out.Content = make([]*yaml.Node, len(n.Content))
		for i, c := range n.Content {
			if out.Content[i], err = r.node(c); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	r.done[n] = out
	return out, nil
}

// mapping resolves a mapping's keys in order, as the conversion does: a
// merge key sets the keys of the mappings it merges (the first of a list
// wins), and a key written after it overrides them.
func (r *resolver) mapping(n *yaml.Node) (*yaml.Node, error) {
	out := new(yaml.Node)
	*out = *n
	out.Anchor, out.Content = "", nil
	type set struct {
		at     int // index of the key in out.Content
		line   int
		merged bool
	}
	keys := map[string]set{}
	mergeLine := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := r.node(n.Content[i])
		if err != nil {
			return nil, err
		}
		line := n.Content[i].Line
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			if mergeLine != 0 {
				return nil, &duplicate{key: "<<", first: mergeLine, line: line}
			}
			mergeLine = line
			maps, err := r.mergedMaps(n.Content[i+1], line)
			if err != nil {
				return nil, err
			}
			for _, m := range maps {
				for j := 0; j+1 < len(m.Content); j += 2 {
					if m.Content[j].Kind != yaml.ScalarNode {
						out.Content = append(out.Content, m.Content[j], m.Content[j+1])
						continue
					}
					key := jsonKey(m.Content[j])
					switch was, ok := keys[key]; {
					case ok && !was.merged:
						return nil, fmt.Errorf("%d: the merge key (<<) sets %q again after line %d: the API server would take the merged value, a reader the one written; put the merge key first", line, key, was.line)
					case ok:
						continue // an earlier mapping of the list wins
					}
					if r.merged += 2; r.merged > maxAliased {
						return nil, fmt.Errorf("%d: merge keys expand the document by more than %d nodes", line, maxAliased)
					}
					keys[key] = set{at: len(out.Content), line: line, merged: true}
					out.Content = append(out.Content, m.Content[j], m.Content[j+1])
				}
			}
			continue
		}
		v, err := r.node(n.Content[i+1])
		if err != nil {
			return nil, err
		}
		if k.Kind != yaml.ScalarNode {
			out.Content = append(out.Content, k, v) // not a JSON key: the conversion refuses it
			continue
		}
		key := jsonKey(k)
		if was, ok := keys[key]; ok && !was.merged {
			return nil, &duplicate{key: key, first: was.line, line: line}
		} else if ok {
			out.Content[was.at], out.Content[was.at+1] = k, v
			keys[key] = set{at: was.at, line: line}
			continue
		}
		keys[key] = set{at: len(out.Content), line: line}
		out.Content = append(out.Content, k, v)
	}
	return out, nil
}

// mergedMaps returns the resolved mappings a merge key's value v names: a
// mapping, an alias of one, or a list of either.
func (r *resolver) mergedMaps(v *yaml.Node, line int) ([]*yaml.Node, error) {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	var out []*yaml.Node
	for _, it := range items {
		m, err := r.node(it)
		if err != nil {
			return nil, err
		}
		if m.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%d: the merge key (<<) needs a mapping or a list of mappings", line)
		}
		out = append(out, m)
	}
	return out, nil
}

// duplicate is a key set twice in one mapping.
type duplicate struct {
	key         string
	first, line int
}

func (d *duplicate) Error() string {
	return fmt.Sprintf("%d: duplicate key %q (first at line %d): the API server refuses a key set twice; keep one", d.line, strings.TrimPrefix(d.key, "\x00"), d.first)
}

// jsonKey returns the JSON object key the API server's YAML-to-JSON
// conversion (sigs.k8s.io/yaml, YAML 1.1) makes of the scalar key k.
func jsonKey(k *yaml.Node) string {
	if k.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 ||
		k.ShortTag() == "!!str" && (k.Style&yaml.TaggedStyle != 0 || plainWord(k.Value)) {
		return k.Value
	}
	// A plain key that may not be a string in YAML 1.1: ask its parser.
	raw, err := yaml.Marshal(&yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: k.Tag, Value: k.Value, Style: k.Style},
		{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"},
	}})
	var m map[any]any
	if err != nil || yamlv2.Unmarshal(raw, &m) != nil || len(m) != 1 {
		return "\x00" + k.Value // the conversion refuses it
	}
	for key := range m {
		switch v := key.(type) {
		case string:
			return v
		case int:
			return strconv.Itoa(v)
		case int64:
			return strconv.FormatInt(v, 10)
		case float64:
			switch {
			case math.IsInf(v, 1):
				return ".inf"
			case math.IsInf(v, -1):
				return "-.inf"
			case math.IsNaN(v):
				return ".nan"
			}
			return strconv.FormatFloat(v, 'g', -1, 32)
		case bool:
			return strconv.FormatBool(v)
		}
	}
	return "\x00" + k.Value
}

// plainWord reports whether a plain scalar is a string in YAML 1.1 too:
// it starts with a letter and is none of YAML 1.1's booleans and nulls.
func plainWord(s string) bool {
	if s == "" || !('a' <= s[0] && s[0] <= 'z' || 'A' <= s[0] && s[0] <= 'Z') {
		return false
	}
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
		"true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL":
		return false
	}
	return true
}
