// Package redact masks secrets in text that is about to be logged or shown.
// Every error text the framework keeps or logs goes through it. It masks:
//
//   - passwords in connection strings of every common form: URLs,
//     scheme-less user:password@host DSNs, libpq key=value lists;
//   - the value after a secret's name and '=' or ':', in key=value lists,
//     URL queries and fragments, headers, JSON (also JSON quoted again by
//     %q) and YAML. A name counts when it ends in one of pass, password,
//     passwd, pwd, passphrase, secret, token, sig, signature, sessid,
//     sessionid (session_id), or api, access, account, private, secret,
//     session, signing, encryption or master followed by key (api_key),
//     optionally followed by a number (X-Hub-Signature-256). Case and the
//     separators '-', '_' and '.' do not matter: client_secret, clientSecret,
//     CLIENT_SECRET, X-Amz-Signature, x-auth-token and PGPASSWORD all count.
//     The value runs to white space, to its closing quote when quoted, and
//     to the end of the line when the name starts a line and ':' follows it
//     (a header or YAML line). A ':' or '"' ending it stays, with what
//     follows: Get "https://h/?token=x": 404 keeps its 404. A name ending
//     a quoted URL, as in Post "https://h/oauth/token": 401, is no name;
//   - the value after X-Api-Key, Api-Key and ApiKey followed by white space
//     (x-api-key abc123def), when shaped as a key: eight or more
//     characters holding a digit;
//   - the value after auth, session, credential and credentials only with
//     '=' (auth=x, X-Amz-Credential=x) or as a quoted key ("session": "x"),
//     since these words start ordinary error texts ("credentials: cannot
//     check peer");
//   - the whole value of Authorization, Proxy-Authorization, Cookie and
//     Set-Cookie, whatever the scheme, to the end of the line or its closing
//     quote or bracket; a known scheme's name stays (Bearer xxxxx);
//   - Bearer and Basic credentials anywhere, PEM private key blocks,
//     GitHub tokens (ghp_…, github_pat_…) and JSON Web Tokens;
//   - AWS access key ids as words (AKIA… and ASIA…, 20 characters), and
//     Stripe's secret, restricted and webhook keys (sk_live_…, sk_test_…,
//     rk_live_…, rk_test_…, whsec_…, 16 characters or more after the
//     prefix); the prefix stays (AKIAxxxxx, sk_live_xxxxx);
//   - the path of Slack's webhook, workflow, trigger and response URLs
//     (https://hooks.slack.com/services/xxxxx); the host and kind stay.
//
// But for the API key headers above, a name without '=' or ':' after it is
// an ordinary word: "token bucket empty" and "missing api key" stay as they
// are.
package redact

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Mask is what a secret is replaced with.
const Mask = "xxxxx"

const (
	// secretKeys end the names whose value is a secret after '=' or ':'.
	secretKeys = `(?:pass(?:[-_.]?(?:word|phrase))?|passwd|pwd|secret|token|sig|signature|sess(?:ion)?[-_.]?id|` +
		`(?:api|access|account|private|secret|session|signing|encryption|master)[-_.]?key)(?:[-_.]?\d+)?`
	// quotedKeys end the names whose value is a secret after '=', or after
	// ':' when quoted as a JSON key is.
	quotedKeys = `(?:auth|session|credentials?)(?:[-_.]?\d+)?`
	// value is what follows a secret's name: a quoted string, a string
	// quoted twice ("{\"password\":\"x y\"}"), or a run of non-space.
	// It does not end in ':' or '"', which close the text around it: the
	// quote and colon of `Get "https://h/?token=x": 404` stay, and so does
	// the status after them. A run of nothing else is a value only when it
	// is longer than such an ending.
	value = quoted + `|` + bare
	// eqValue is value after '=', where a '"' followed by ':' and white
	// space closes the text around an empty value (?token=": 401) and
	// opens nothing.
	eqValue = single + `|"(?:[^:"\\]|:\S|\\.)(?:[^"\\]|\\.)*"?` + tail + `|""` + tail + `|` + twice + `|` + bare
	quoted  = single + `|"(?:[^"\\]|\\.)*"?` + tail + `|` + twice
	single  = `'(?:[^'\\]|\\.)*'?` + tail
	twice   = `\\"(?:[^\\]|\\[^"\\]|\\\\(?:[^\\]|\\.))*(?:\\")?` + tail
	tail    = `(?:\S*[^\s:"])?`
	bare    = `\S*[^\s:"]|\S{3,}`
	// wholeKeys are the headers whose whole value is a secret.
	wholeKeys = `(?:(?:proxy-)?authorization|(?:set-)?cookie)(?:[-_.]?\d+)?\\?["']?[ \t]*[=:][ \t]*`
	// scheme is an Authorization scheme shown in front of the mask.
	scheme = `(?:(?:basic|bearer|digest|token|negotiate|ntlm|aws4-hmac-sha256|hoba|mutual|oauth|dpop|apikey)[ \t]+)?`
)

// keyWords are the words every secretKeys name holds.
var keyWords = []string{"pass", "pwd", "secret", "token", "sig", "sess", "key"}

// patterns run in order. A pattern runs only when the text, folded as
// fold does, holds one of its needs: without that it cannot match, and
// most texts skip most patterns.
var patterns = []struct {
	needs []string
	re    replacer
	repl  string
}{
	// A PEM private key, up to its END line or the end of the text.
	{[]string{"private key-----"}, regexp.MustCompile(`(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`), "${1}" + Mask},
	// Authorization: Digest a="b", c="d" and Cookie: a=b; c=d hold spaces:
	// the value runs to its closing quote ("Authorization": "x y"), its
	// closing bracket (map[Authorization:[x y]]) or the end of the line.
	{wholeWords, regexp.MustCompile(`(?i)(` + wholeKeys + `"` + scheme + `)(?:[^"\\]|\\.)*`), "${1}" + Mask},
	{wholeWords, regexp.MustCompile(`(?i)(` + wholeKeys + `\[` + scheme + `)[^\]]*`), "${1}" + Mask},
	{wholeWords, regexp.MustCompile(`(?i)(` + wholeKeys + scheme + `)[^"\[\s][^\r\n]*`), "${1}" + Mask},
	// A header or YAML line: X-Api-Key: two words.
	{keyWords, regexp.MustCompile(`(?im)^([ \t]*[\w.-]*` + secretKeys + `[ \t]*:[ \t]*)[^\s][^\r\n]*`), "${1}" + Mask},
	// password=secret (libpq and URL queries: the value runs to white space,
	// as libpq reads it), password='se cret', "password": "x", token: x
	{keyWords, names(secretKeys, `\\?["']?`, `\\?["']?`), "${1}${2}${3}" + Mask},
	{[]string{"auth", "session", "credential"}, names(quotedKeys, ``, `\\?["']`), "${1}${2}${3}" + Mask},
	// An API key header's name with white space instead of ':' (upstream
	// refused x-api-key abc123): the value counts only when shaped as a key,
	// so "x-api-key missing" and "api key rotated" stay.
	{[]string{"api-key", "apikey"}, regexp.MustCompile(`(?i)(\b(?:x-)?api-?key[ \t]+["']?)` + keyShaped()), "${1}" + Mask},
	// The '@' patterns run after the names', which would lose the name of
	// a value holding '@' (password=p@ss@word) and leave its tail.
	//
	// user:password@host, with or without a scheme: the password runs to the
	// last '@' before white space, since a malformed one may hold '@' (or a
	// quote) unescaped. The user part stops at ':', '/', '@' and white space.
	{[]string{"@"}, regexp.MustCompile(`((?:^|[\s"'=(<,;\x60])(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?[^\s:/@"'\x60]*):[^\s]*@`), "${1}:" + Mask + "@"},
	// What is left of a password with an unescaped '@' once a parser split
	// it at the first one: "lookup ss@db: no such host" for
	// app:p@ss@db. Everything before the last '@' of a token with no ':' or
	// '/' before it goes (user@host forms lose their user too).
	{[]string{"@"}, regexp.MustCompile(`((?:^|[\s"'=(<,;\x60]))[^\s:/"'\x60@]+(?:@[^\s:/"'\x60@]+)*@`), "${1}" + Mask + "@"},
	// Bearer x, Basic x anywhere; the credential ends where a b64token ends,
	// so "bearer expires_in=3600" is not one.
	{[]string{"bearer", "basic"}, regexp.MustCompile(`(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/-]+=*($|[\s"',;\])}>])`), "${1}" + Mask + "${2}"},
	// Tokens known by their shape: GitHub's, and JSON Web Tokens.
	{[]string{"gh", "eyj"}, regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)`), Mask},
	// AWS access key ids, long-lived (AKIA) and temporary (ASIA), as words;
	// the kind stays.
	{[]string{"akia", "asia"}, regexp.MustCompile(`\b(AKIA|ASIA)[A-Z0-9]{16}\b`), "${1}" + Mask},
	// Stripe's secret and restricted keys and webhook signing secrets;
	// publishable keys (pk_…) are not secrets. The kind stays.
	{[]string{"k_live_", "k_test_", "whsec_"}, regexp.MustCompile(`\b((?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{16,}|\b(whsec_)[A-Za-z0-9+/]{16,}=*`), "${1}${2}" + Mask},
	// Slack's incoming webhook, workflow and trigger URLs, and the response
	// URLs of commands and actions: the path after the kind is the secret,
	// the host and kind stay.
	{[]string{"hooks.slack"}, regexp.MustCompile(`(?i)(\bhooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers|commands|actions)/)[^\s"'\x60<>()\[\]{},;:?#]+`), "${1}" + Mask},
}

// replacer is a *regexp.Regexp, or one that passes over some matches.
type replacer interface {
	ReplaceAllString(src, repl string) string
}

// names returns the pattern of a value after one of keys, and then the
// quote, if any, and '=' of eq, or the quote and ':' of colon. Its groups
// are the name, the '=' and the ':'.
func names(keys, eq, colon string) nameValues {
	return nameValues{regexp.MustCompile(`(?i)(` + keys + `)(?:(` + eq + `\s*=\s*)(?:` + eqValue + `)|` +
		`(` + colon + `\s*:\s*)(?:` + value + `))`)}
}

// nameValues passes over a name ending a URL's path or query whose quote
// and ':' close the quoted URL: in Post "https://h/oauth/token": 401 the
// 401 is no secret. A quoted value after them ({"app/password": "x"}) is
// one.
type nameValues struct{ *regexp.Regexp }

func (r nameValues) ReplaceAllString(s, repl string) string {
	var b []byte
	done := 0 // s[:done] is in b
	for at := 0; ; {
		m := r.FindStringSubmatchIndex(s[at:])
		if m == nil {
			break
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += at
			}
		}
		if m[6] >= 0 && strings.ContainsAny(s[m[6]:m[7]], `"'`) &&
			!strings.ContainsAny(s[m[7]:m[7]+1], `"'\`) && endsURL(s[:m[0]]) {
			at = m[7] // the value may hold a name of its own
			continue
		}
		b = append(b, s[done:m[0]]...)
		b = r.ExpandString(b, repl, s, m)
		done, at = m[1], m[1]
	}
	if done == 0 { // a match is never empty
		return s
	}
	return string(append(b, s[done:]...))
}

// endsURL says whether s, the text before a name, ends in a URL's '/',
// '?' or '&' and the name's other words (/oauth/access_token).
func endsURL(s string) bool {
	s = strings.TrimRightFunc(s, func(r rune) bool {
		return r == '_' || r == '-' || r == '.' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	})
	return s != "" && strings.IndexByte("/?&", s[len(s)-1]) >= 0
}

// keyShaped returns the pattern of a run of eight or more b64token
// characters holding a digit: one alternative for each of the first seven
// places its first digit may stand at, and one for a digit further on.
func keyShaped() string {
	const c = `[A-Za-z0-9._~+/=-]`
	alts := []string{c + `{7,}\d` + c + `*`}
	for i := range 7 {
		alts = append(alts, c+`{`+strconv.Itoa(i)+`}\d`+c+`{`+strconv.Itoa(7-i)+`,}`)
	}
	return `(?:` + strings.Join(alts, "|") + `)`
}

// wholeWords are the words every wholeKeys name holds.
var wholeWords = []string{"authorization", "cookie"}

// String returns s with every secret it recognises masked.
func String(s string) string {
	// A mask only ever replaces text, so a need missing from s is missing
	// from what the patterns before made of it.
	folded := fold(s)
	for _, p := range patterns {
		if slices.ContainsFunc(p.needs, func(w string) bool { return strings.Contains(folded, w) }) {
			s = p.re.ReplaceAllString(s, p.repl)
		}
	}
	return s
}

// fold lowers ASCII letters and maps the two other runes that (?i) matches
// with an ASCII letter, U+017F (ſ, s) and U+212A (Kelvin sign, k), so that
// a need is found wherever a case-insensitive pattern could match.
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		case r == '\u017f':
			return 's'
		case r == '\u212a':
			return 'k'
		}
		return r
	}, s)
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
