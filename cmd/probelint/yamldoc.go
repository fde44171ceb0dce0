package main

// Reading a document as the API server does: the values the linter judges
// must be the values the API server keeps.

import (
	"fmt"
	"math"
	"strconv"

	yamlv2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"
)

// duplicate is a key set twice in one mapping.
type duplicate struct {
	key         string
	first, line int
}

func (d *duplicate) Error() string {
	return fmt.Sprintf("%d: duplicate key %q (first at line %d): the API server refuses a key set twice; keep one", d.line, d.key, d.first)
}

// duplicates returns the first key n sets twice in a mapping, comparing
// keys as they read in JSON ("1" and 1 are the same key).
func duplicates(n *yaml.Node) *duplicate {
	if n.Kind == yaml.MappingNode {
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				continue // not a JSON key: the conversion refuses it
			}
			key := jsonKey(k)
			if first, ok := seen[key]; ok {
				return &duplicate{key: key, first: first, line: k.Line}
			}
			seen[key] = k.Line
		}
	}
	for _, c := range n.Content {
		if d := duplicates(c); d != nil {
			return d
		}
	}
	return nil
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
