package redact_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/probekit/probes/redact"
)

// The names the package doc says are covered, as words that keyName joins.
// quotedOnly names count after '=' or as a quoted key, not after a bare ':'.
var secretNames = []struct {
	words      []string
	quotedOnly bool
}{
	{words: []string{"password"}}, {words: []string{"pass"}}, {words: []string{"passwd"}}, {words: []string{"pwd"}},
	{words: []string{"pass", "phrase"}}, {words: []string{"pg", "password"}}, {words: []string{"db", "pass"}},
	{words: []string{"secret"}}, {words: []string{"client", "secret"}}, {words: []string{"secret", "key"}},
	{words: []string{"aws", "secret", "access", "key"}},
	{words: []string{"token"}}, {words: []string{"access", "token"}}, {words: []string{"refresh", "token"}},
	{words: []string{"id", "token"}}, {words: []string{"x", "auth", "token"}}, {words: []string{"x", "amz", "security", "token"}},
	{words: []string{"api", "key"}}, {words: []string{"x", "api", "key"}}, {words: []string{"access", "key"}},
	{words: []string{"private", "key"}}, {words: []string{"account", "key"}}, {words: []string{"signing", "key"}},
	{words: []string{"sig"}}, {words: []string{"signature"}}, {words: []string{"x", "amz", "signature"}},
	{words: []string{"x", "hub", "signature"}},
	{words: []string{"session", "id"}}, {words: []string{"sessid"}}, {words: []string{"j", "session", "id"}},
	{words: []string{"authorization"}}, {words: []string{"proxy", "authorization"}},
	{words: []string{"cookie"}}, {words: []string{"set", "cookie"}},
	{words: []string{"auth"}, quotedOnly: true}, {words: []string{"session"}, quotedOnly: true},
	{words: []string{"credential"}, quotedOnly: true}, {words: []string{"credentials"}, quotedOnly: true},
	{words: []string{"x", "amz", "credential"}, quotedOnly: true},
}

// keyName spells words as spell says: bits 0-1 the separator, bits 2-4 the
// case (lower, UPPER, Title, camel, or mixed letter by letter from bits 8
// on), bit 5 a number at the end (X-Hub-Signature-256).
func keyName(words []string, spell uint64) string {
	sep := []string{"", "-", "_", "."}[spell&3]
	parts := make([]string, len(words))
	style := spell >> 2 & 7
	for i, w := range words {
		switch {
		case style == 1:
			w = strings.ToUpper(w)
		case style == 2, style == 3 && i > 0:
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		parts[i] = w
	}
	name := strings.Join(parts, sep)
	if style >= 4 {
		b := []byte(name)
		for i := range b {
			if spell>>(8+i%56)&1 == 1 {
				b[i] = byte(unicode.ToUpper(rune(b[i])))
			}
		}
		name = string(b)
	}
	if spell>>5&1 == 1 {
		name += sep + "256"
	}
	return name
}

// keyForms put a value after a key name in the forms the package doc
// lists. Each returns the text and the value as the text shows it, and
// false when the form cannot carry the value.
var keyForms = []struct {
	name  string
	colon bool // the name is followed by a bare ':'
	make  func(key, v string) (text, shown string, ok bool)
}{
	{"query", false, func(key, v string) (string, string, bool) {
		e := url.QueryEscape(v)
		return "GET https://h.example/p?a=1&" + key + "=" + e + "&b=2: 403 Forbidden", e, true
	}},
	{"key=value", false, func(key, v string) (string, string, bool) {
		return "check: " + key + "=" + v + " rejected", v, noSpace(v) && !startsWith(v, `'"\`)
	}},
	{"header line", true, func(key, v string) (string, string, bool) {
		return "GET / HTTP/1.1\r\nHost: h.example\r\n" + key + ": " + v + "\r\nAccept: */*\r\n", v,
			!strings.ContainsAny(v, "\r\n")
	}},
	{"header in a sentence", true, func(key, v string) (string, string, bool) {
		return "upstream said " + key + ": " + v + " and closed", v, noSpace(v) && !startsWith(v, `'"\[`)
	}},
	{"json", false, func(key, v string) (string, string, bool) {
		k, _ := json.Marshal(key)
		b, _ := json.Marshal(v)
		return `config {"a":1,` + string(k) + ":" + string(b) + `,"b":2}`, string(b[1 : len(b)-1]), true
	}},
	{"json quoted again", false, func(key, v string) (string, string, bool) {
		k, _ := json.Marshal(key)
		b, _ := json.Marshal(v)
		q := fmt.Sprintf("%q", string(b))
		return fmt.Sprintf("bad body %q", `{"a":1,`+string(k)+":"+string(b)+`,"b":2}`), q[1 : len(q)-1], true
	}},
}

// startsWith says whether v starts with one of chars.
func startsWith(v, chars string) bool { return v != "" && strings.ContainsRune(chars, rune(v[0])) }

// meaningful says whether v is worth looking for in the output: four
// letters or digits at least, valid UTF-8 without control characters, and
// not the mask.
func meaningful(v string) bool {
	n := 0
	for _, r := range v {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			n++
		}
	}
	return n >= 4 && utf8.ValidString(v) && !strings.ContainsFunc(v, unicode.IsControl) &&
		!strings.Contains(v, redact.Mask) && !strings.Contains(v, string(unicode.ReplacementChar))
}

// checkKey fails t when a form of name=v, once masked, still shows v.
func checkKey(t *testing.T, name uint8, spell uint64, v string) {
	n := secretNames[int(name)%len(secretNames)]
	key := keyName(n.words, spell)
	if !meaningful(v) {
		return
	}
	for _, f := range keyForms {
		if f.colon && n.quotedOnly {
			continue
		}
		in, shown, ok := f.make(key, v)
		if !ok {
			continue
		}
		if empty, _, _ := f.make(key, ""); strings.Contains(empty, shown) {
			continue // the value is a word of the form itself
		}
		// A kept scheme and the mask may spell the value ("Digest x").
		got := redact.String(in)
		if strings.Contains(strings.ReplaceAll(got, redact.Mask, "\x00"), shown) {
			t.Errorf("%s form of %q: String(%q) = %q: still holds the value", f.name, key, in, got)
		}
	}
}

// checkWord fails t when a name used as an ordinary word, with no '=' or
// ':' after it, changes text that holds no secret.
func checkWord(t *testing.T, name uint8, spell uint64, v string) {
	key := keyName(secretNames[int(name)%len(secretNames)].words, spell)
	if strings.ContainsFunc(v, func(r rune) bool {
		return !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" ,.-", r)))
	}) {
		return
	}
	for _, w := range []string{"bearer", "basic", "gh", "eyj", "akia", "asia", "api-key", "apikey"} {
		if strings.Contains(strings.ToLower(v), w) {
			return // masked by their shape, not by a name
		}
	}
	switch strings.ToLower(key) {
	case "x-api-key", "api-key", "apikey":
		// A header's name before a word shaped as a key: x-api-key abc12345.
		w := strings.TrimLeft(v, " ")
		if i := strings.IndexFunc(w, func(r rune) bool { return r == ' ' || r == ',' }); i >= 0 {
			w = w[:i]
		}
		if len(w) >= 8 && strings.ContainsAny(w, "0123456789") {
			return
		}
	}
	for _, in := range []string{key + " " + v, v + " " + key + " " + v, "check " + key + " failed: " + v} {
		if got := redact.String(in); got != in {
			t.Errorf("text without secrets changed: got %q, want %q", got, in)
		}
	}
}

func TestKeys(t *testing.T) {
	for _, tt := range []struct {
		name  string
		spell uint64
		v     string
	}{
		{"lower", 0, "s3cret-value"},
		{"upper with dashes", 1<<2 | 1, "s3cret value"},
		{"title with underscores", 2<<2 | 2, `ab"cd'ef`},
		{"camel", 3 << 2, "p@ss@word"},
		{"mixed with dots", 4<<2 | 3 | 0xa5<<8, `back\slash`},
		{"numbered", 1 << 5, "ü-ñ-密码"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i := range secretNames {
				checkKey(t, uint8(i), tt.spell, tt.v)
				checkWord(t, uint8(i), tt.spell, "bucket empty, 3 checks passed")
			}
		})
	}
}

func FuzzKeys(f *testing.F) {
	for i := range secretNames {
		f.Add(uint8(i), uint64(i*37), "s3cret-value")
	}
	f.Add(uint8(0), uint64(3<<2), "two words")
	f.Add(uint8(1), uint64(0), "bucket empty")
	f.Fuzz(func(t *testing.T, name uint8, spell uint64, v string) {
		checkKey(t, name, spell, v)
		checkWord(t, name, spell, v)
	})
}
