package redact_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/probekit/probes/redact"
)

func TestString(t *testing.T) {
	tests := []struct {
		name, in, secret string
	}{
		{"url", `dial postgres://app:s3cret@db:5432/items failed`, "s3cret"},
		{"url with odd chars", `postgresql://app:p%40ss!word@db/x`, "p%40ss!word"},
		{"url with a quote", `postgres://app:it's-s3cret@db`, "s3cret"},
		{"url with at sign", `postgres://u:p@ss@host/db`, "ss@host"},
		{"tail of a password split at its first at sign", "failed to connect to `user=app database=x`:\n\thostname resolving error: lookup ss@127.0.0.1: no such host", "ss"},
		{"tail with two at signs", "lookup ss@word@db: no such host", "word"},
		{"malformed url", `cannot parse "postgres://app:leak@[bad": invalid`, "leak"},
		{"key value", `host=db user=app password=hunter2 dbname=x`, "hunter2"},
		{"key value with comma", `host=db password=ab,s3cret user=app`, "s3cret"},
		{"key value with semicolon", `host=db password=ab;s3cret user=app`, "s3cret"},
		{"quoted key value", `host=db password='two words' user=app`, "two words"},
		{"quoted key value, three words", `password='a b s3cret'`, "s3cret"},
		{"escaped quote", `password='se\'cret' user=x`, "cret"},
		{"upper case env", `PGPASSWORD=topsecret psql`, "topsecret"},
		{"json", `{"password": "jsonsecret"}`, "jsonsecret"},
		{"scheme-less dsn", `dial app:s3cret@tcp(db:3306)/items: refused`, "s3cret"},
		{"scheme-less dsn at start", `app:s3cret@tcp(db:3306)/items`, "s3cret"},
		{"bearer", `Authorization: Bearer eyJhbGciOi.abc`, "eyJhbGciOi"},
		{"api key", `api_key=k3y&x=1`, "k3y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact.String(tt.in); strings.Contains(got, tt.secret) {
				t.Errorf("String(%q) = %q: still holds %q", tt.in, got, tt.secret)
			}
		})
	}
	for _, clean := range []string{"host=db user=app", "dial tcp 127.0.0.1:5432: connect: connection refused", "no heartbeat for 3s (limit 1s)"} {
		if got := redact.String(clean); got != clean {
			t.Errorf("text without secrets changed: got %q, want %q", got, clean)
		}
	}
	cause := errors.New("password=abc")
	if err := redact.Error(cause); !errors.Is(err, cause) || strings.Contains(err.Error(), "abc") {
		t.Errorf("Error: got %q (Is %v), want masked text wrapping the cause", err, errors.Is(err, cause))
	}
	if redact.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

// dsnForms put a password into every connection-string form the package
// claims to mask, escaped as that form escapes it.
var dsnForms = []struct {
	name string
	ok   func(pw string) bool // whether the form can carry pw at all
	make func(pw string) string
}{
	{"url", noSpace, func(pw string) string { return "failed to connect to postgres://app:" + pw + "@db:5432/items" }},
	{"scheme-less", noSpace, func(pw string) string { return "dial app:" + pw + "@tcp(db:3306)/items: refused" }},
	{"libpq", func(pw string) bool { return noSpace(pw) && !strings.ContainsAny(pw[:1], `'"`) },
		func(pw string) string { return "host=db user=app password=" + pw + " dbname=items" }},
	{"libpq quoted", func(string) bool { return true }, func(pw string) string {
		return "host=db password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "' user=app"
	}},
	{"env", noSpace, func(pw string) string { return "PGPASSWORD=" + pw + " psql" }},
	{"json", func(string) bool { return true }, func(pw string) string {
		b, _ := json.Marshal(map[string]string{"password": pw})
		return "config " + string(b)
	}},
}

func noSpace(pw string) bool { return !strings.ContainsFunc(pw, unicode.IsSpace) }

// checkForm fails t when the form of pw, once masked, still shows pw.
func checkForm(t *testing.T, pw string) {
	if len(pw) < 4 || strings.Contains(redact.Mask, pw) || strings.ContainsFunc(pw, func(r rune) bool { return r < ' ' || r == unicode.ReplacementChar }) {
		return
	}
	for _, f := range dsnForms {
		if !f.ok(pw) {
			continue
		}
		in := f.make(pw)
		if strings.Contains(f.make(""), pw) {
			continue // the password is a word of the form itself
		}
		shown := pw
		if f.name == "json" {
			b, _ := json.Marshal(pw)
			shown = string(b[1 : len(b)-1])
		}
		if got := redact.String(in); strings.Contains(got, shown) {
			t.Errorf("%s form: String(%q) = %q: still holds the password", f.name, in, got)
		}
	}
}

func TestForms(t *testing.T) {
	for _, pw := range []string{"s3cret", "it's-s3cret", "p@ss@word", `ab"cd`, "a b s3cret", "ab,s3cret", "ab;s3cret", `'ab'cd`, `back\slash`, "ü-ñ-密码"} {
		t.Run(fmt.Sprintf("%q", pw), func(t *testing.T) { checkForm(t, pw) })
	}
}

func FuzzString(f *testing.F) {
	for _, pw := range []string{"s3cret", "it's-s3cret", "p@ss@word", `ab"cd`, "a b s3cret", `'ab'cd`} {
		f.Add(pw)
	}
	f.Fuzz(func(t *testing.T, pw string) { checkForm(t, pw) })
}
