// Package redact masks secrets in text that is about to be logged or shown:
// passwords in connection strings of every common form (URLs, libpq
// key=value lists, scheme-less user:password@host DSNs), key=value and JSON
// secrets, and Authorization credentials. Every error text the framework
// keeps or logs goes through it.
package redact

import "regexp"

// Mask is what a secret is replaced with.
const Mask = "xxxxx"

var patterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	// user:password@host, with or without a scheme: the password runs to the
	// last '@' before white space, since a malformed one may hold '@' (or a
	// quote) unescaped. The user part stops at ':', '/', '@' and white space.
	{regexp.MustCompile(`((?:^|[\s"'=(<,;\x60])(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?[^\s:/@"'\x60]*):[^\s]*@`), "${1}:" + Mask + "@"},
	// What is left of a password with an unescaped '@' once a parser split
	// it at the first one: "lookup ss@db: no such host" for
	// app:p@ss@db. Everything before the last '@' of a token with no ':' or
	// '/' before it goes (user@host forms lose their user too).
	{regexp.MustCompile(`((?:^|[\s"'=(<,;\x60]))[^\s:/"'\x60@]+(?:@[^\s:/"'\x60@]+)*@`), "${1}" + Mask + "@"},
	// password=secret (libpq and URL queries: the value runs to white space,
	// as libpq reads it), password='se cret', "password": "x", token: x
	{regexp.MustCompile(`(?i)((?:pass(?:word)?|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)["']?\s*[=:]\s*)` +
		`('(?:[^'\\]|\\.)*'?\S*|"(?:[^"\\]|\\.)*"?\S*|\S+)`), "${1}" + Mask},
	// Authorization: Bearer x, Basic x
	{regexp.MustCompile(`(?i)((?:authorization["']?\s*[=:]\s*["']?)?\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+`), "${1}" + Mask},
}

// String returns s with every secret it recognises masked.
func String(s string) string {
	for _, p := range patterns {
		s = p.re.ReplaceAllString(s, p.repl)
	}
	return s
}

// redacted keeps the cause for errors.Is and errors.As, and shows only the
// masked text.
type redacted struct {
	msg   string
	cause error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.cause }

// Error returns err with String applied to its text; errors.Is and errors.As
// still see err. It returns nil for nil, and err itself when already masked.
func Error(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*redacted); ok {
		return err
	}
	return &redacted{msg: String(err.Error()), cause: err}
}
