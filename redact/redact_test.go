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
		{"github token scheme", `Authorization: token ghp_16C7e42F292c6912E7710c838347Ae178B4a`, "16C7e42F"},
		{"github token alone", `push rejected for ghp_16C7e42F292c6912E7710c838347Ae178B4a`, "16C7e42F"},
		{"digest", `Authorization: Digest username="app", realm="api", nonce="dcd98b71", uri="/", response="6629fae49393a053"`, "6629fae4"},
		{"aws4 authorization", `Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, ` +
			`SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7`, "5d672d79"},
		{"unknown scheme", `Authorization: SSWS 00QCjAl4MlV-WPXM`, "00QCjAl4"},
		{"bare authorization", `Authorization: 9f8e7d6c5b4a`, "9f8e7d6c"},
		{"proxy authorization", `Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l`, "YWxhZGRp"},
		{"authorization in a header map", `request map[Accept:[*/*] Authorization:[token ghp_abcd1234efgh5678]]`, "abcd1234"},
		{"authorization in json", `{"authorization":"ApiKey k-12345678","x":1}`, "k-12345678"},
		{"authorization in a dump", "GET / HTTP/1.1\r\nAuthorization: Digest a=\"b\", response=\"6629fae4\"\r\nAccept: */*\r\n", "6629fae4"},
		{"passphrase", `ssh: passphrase=correct-horse`, "correct-horse"},
		{"aws presigned url", `GET https://b.s3.amazonaws.com/o?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request` +
			`&X-Amz-Date=20130524T000000Z&X-Amz-Signature=aeeed9bbccd4d02e: 403 Forbidden`, "aeeed9bb"},
		{"aws signature first", `https://b.s3.amazonaws.com/o?X-Amz-Signature=aeeed9bbccd4d02e&X-Amz-Date=20130524T000000Z`, "aeeed9bb"},
		{"aws security token", `X-Amz-Security-Token: FQoGZXIvYXdzE`, "FQoGZXIv"},
		{"cookie", `Cookie: session=0123abcd; theme=dark`, "0123abcd"},
		{"cookie, secret last", `Cookie: theme=dark; uid=u-77aa91`, "u-77aa91"},
		{"set-cookie", `Set-Cookie: sid=31d4d96e407aad42; Path=/; Secure; HttpOnly`, "31d4d96e"},
		{"credentials", `credentials=AKID:wJalrXUtnFEMI`, "wJalrXUtnFEMI"},
		{"x-api-key header", `X-Api-Key: 5f4dcc3b5aa765d6`, "5f4dcc3b"},
		{"header line with spaces", "GET / HTTP/1.1\r\nX-Api-Key: two words\r\nAccept: */*\r\n", "words"},
		{"yaml with spaces", "db:\n  password: two words\n  user: app\n", "words"},
		{"client_secret query", `POST /oauth/token client_id=app&client_secret=cs-9q8w7e6r&grant_type=client_credentials`, "cs-9q8w7e6r"},
		{"clientSecret json", `{"clientId":"app","clientSecret":"cs-9q8w7e6r"}`, "cs-9q8w7e6r"},
		{"CLIENT_SECRET env", `CLIENT_SECRET=cs-9q8w7e6r`, "cs-9q8w7e6r"},
		{"aws secret access key", `AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI`, "wJalrXUtnFEMI"},
		{"private_key", `private_key=MIIEvQIBADANBg`, "MIIEvQIB"},
		{"privateKey json", `{"privateKey": "MIIEvQIBADANBg"}`, "MIIEvQIB"},
		{"pem private key", "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nq8w7e6r5t4y3\n-----END RSA PRIVATE KEY-----", "q8w7e6r5"},
		{"azure account key", `DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Eby8vdM02xNO==;EndpointSuffix=core`, "Eby8vdM0"},
		{"sig in a query", `https://cdn.example/x?exp=1700000000&sig=a1b2c3d4`, "a1b2c3d4"},
		{"signature in a query", `https://cdn.example/x?signature=a1b2c3d4&t=1`, "a1b2c3d4"},
		{"webhook signature header", `X-Hub-Signature-256: sha256=757107ea0eb2509f`, "757107ea"},
		{"auth in a query", `wss://h.example/ws?auth=a1b2c3d4`, "a1b2c3d4"},
		{"session in a query", `https://h.example/?session=a1b2c3d4`, "a1b2c3d4"},
		{"session in json", `{"session": "a1b2c3d4"}`, "a1b2c3d4"},
		{"sessionid", `sessionid=a1b2c3d4`, "a1b2c3d4"},
		{"jsessionid path parameter", `GET /app;jsessionid=a1b2c3d4?x=1`, "a1b2c3d4"},
		{"session id header", `X-Session-Id: a1b2c3d4`, "a1b2c3d4"},
		{"refresh_token", `grant_type=refresh_token&refresh_token=rt-a1b2c3d4`, "rt-a1b2c3d4"},
		{"access_token fragment", `https://app.example/cb#access_token=at-a1b2c3d4&token_type=bearer`, "at-a1b2c3d4"},
		{"id_token json", `{"id_token":"it-a1b2c3d4"}`, "it-a1b2c3d4"},
		{"x-auth-token header", `x-auth-token: xt-a1b2c3d4`, "xt-a1b2c3d4"},
		{"apiKey json", `{"apiKey": "k-a1b2c3d4"}`, "k-a1b2c3d4"},
		{"quoted json", `bad body "{\"password\":\"s3cret\"}"`, "s3cret"},
		{"quoted json with a space", `bad body "{\"password\":\"two words\"}"`, "words"},
		{"key with a long s", "pa\u017f\u017fword=s3cret", "s3cret"},
		{"key with a kelvin sign", "api_\u212aey=s3cret", "s3cret"},
		{"key value with at signs", `host=db password=p@ss@s3cr3t user=app`, "s3cr3t"},
		{"key value starting with an at sign", `signing_key=@s3cr3t`, "s3cr3t"},
		{"json key with a path", `{"app/db/password": "hunter2"}`, "hunter2"},
		{"name and value in a url path", `Get "https://h.example/x/token:s3cr3tv4l": 401 Unauthorized`, "s3cr3tv4l"},
		{"quoted query secret", `Get "https://h.example/x?api_key=\"s3cr3tv4l\"": 401 Unauthorized`, "s3cr3tv4l"},
		{"slack webhook", `post https://hooks.slack.com/services/T024BE7LD/B01ABCDEF12/xpLG6cwTd2lJ8pXs1f8q0uAe: 404 no_service`, "xpLG6cwT"},
		{"slack webhook ids", `Post "https://hooks.slack.com/services/T024BE7LD/B01ABCDEF12/xpLG6cwTd2lJ8pXs1f8q0uAe": timeout`, "B01ABCDEF12"},
		{"slack workflow", `https://hooks.slack.com/workflows/T024BE7LD/A05ABCDEF12/468123456789012345/Zx9wQ2rT5yU8iO1pA4sD7fG0`, "Zx9wQ2rT"},
		{"slack trigger", `webhook=https://hooks.slack.com/triggers/T024BE7LD/5012345678901/0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d`, "0a1b2c3d"},
		{"aws access key id", `InvalidClientTokenId: the security token included in the request is invalid (key AKIAIOSFODNN7EXAMPLE)`, "IOSFODNN7"},
		{"aws temporary key id", `using ASIAY34FZKBOKMUTVV7A from the instance role`, "Y34FZKBO"},
		{"aws key id in json", `{"AccessKeyId": "ASIAY34FZKBOKMUTVV7A", "Expiration": "2024-01-01T00:00:00Z"}`, "Y34FZKBO"},
		{"stripe live key", `stripe: Invalid API Key provided: sk_live_4eC39HqLyjWDarjtT1zdp7dc`, "4eC39HqL"},
		{"stripe test key", `using sk_test_51H8abcDEFghiJKLmnoPQRstu`, "51H8abcD"},
		{"stripe restricted live key", `rk_live_51H8abcDEFghiJKLmnoPQRstu revoked`, "51H8abcD"},
		{"stripe restricted test key", `"rk_test_51H8abcDEFghiJKLmnoPQRstu"`, "51H8abcD"},
		{"stripe webhook secret", `STRIPE_WEBHOOK=whsec_5f4dcc3b5aa765d61d8327deb882cf99 loaded`, "5f4dcc3b"},
		{"x-api-key after a space", `upstream refused x-api-key abc123def`, "abc123def"},
		{"X-API-Key after a space", `request had X-API-Key 5f4dcc3b5aa765d6, rejected`, "5f4dcc3b"},
		{"api-key after a space", `header api-key k-9f8e7d6c5b4a: 401`, "9f8e7d6c"},
		{"apikey after a space", `apikey a1b2c3d4e5f6 expired`, "a1b2c3d4"},
		{"x-api-key after a space, quoted", `x-api-key "s3cr3t-v4lue" not accepted`, "s3cr3t-v4lue"},
		{"x-api-key after a tab", "x-api-key\tab12cd34ef", "ab12cd34ef"},
		{"name after a url ending in a name", `Get "https://h.example/oauth/token": password=hunter2`, "hunter2"},
		{"jwt alone", `rejected eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U`, "dozjgNry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact.String(tt.in); strings.Contains(got, tt.secret) {
				t.Errorf("String(%q) = %q: still holds %q", tt.in, got, tt.secret)
			}
		})
	}
	for _, clean := range clean {
		t.Run("clean "+clean, func(t *testing.T) {
			if got := redact.String(clean); got != clean {
				t.Errorf("text without secrets changed: got %q, want %q", got, clean)
			}
		})
	}
	cause := errors.New("password=abc")
	if err := redact.Error(cause); !errors.Is(err, cause) || strings.Contains(err.Error(), "abc") {
		t.Errorf("Error: got %q (Is %v), want masked text wrapping the cause", err, errors.Is(err, cause))
	}
	if redact.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

// TestStringKeeps checks what stays around a masked value: the text after
// it, and text that only looks like a name with a value.
func TestStringKeeps(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Go's net/http errors quote the URL and put the reason after ':'.
		{"status after a query secret in a quoted url",
			`Get "https://api.example.com/v1?api_key=s3cr3tv4l": 404 Not Found`,
			`Get "https://api.example.com/v1?api_key=xxxxx": 404 Not Found`},
		{"status after a query secret in a url",
			`GET https://api.example.com/v1?token=s3cr3tv4l: 404 Not Found`,
			`GET https://api.example.com/v1?token=xxxxx: 404 Not Found`},
		{"status after a password and a query secret",
			`GET https://user:hunter2@host/path?token=SECRET: 404`,
			`GET https://user:xxxxx@host/path?token=xxxxx: 404`},
		{"status after a quoted query secret",
			`Get "https://api.example.com/v1?token='s3cr3tv4l'": 401 Unauthorized`,
			`Get "https://api.example.com/v1?token=xxxxx": 401 Unauthorized`},
		{"status after an empty query value",
			`Get "https://api.example.com/v1?token=": 401 Unauthorized`,
			`Get "https://api.example.com/v1?token=": 401 Unauthorized`},
		{"status after a url ending in a secret's name",
			`Post "https://auth.example.com/oauth/token": 401 Unauthorized`,
			`Post "https://auth.example.com/oauth/token": 401 Unauthorized`},
		{"status after a url ending in a joined name",
			`Get "https://h.example/oauth/access_token": 400 Bad Request`,
			`Get "https://h.example/oauth/access_token": 400 Bad Request`},
		{"status after a url ending in a joined name, single quotes",
			`GET 'https://h.example/v1/client-secret': 404 Not Found`,
			`GET 'https://h.example/v1/client-secret': 404 Not Found`},
		{"status after a query name without a value",
			`Get "https://api.example.com/v1?a=1&secret": 404 Not Found`,
			`Get "https://api.example.com/v1?a=1&secret": 404 Not Found`},
		{"status after a url ending in a quoted-only name",
			`Get "https://api.example.com/v1/session": 404 Not Found`,
			`Get "https://api.example.com/v1/session": 404 Not Found`},
		{"slack webhook keeps its host and kind",
			`Post "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX": 404 no_service`,
			`Post "https://hooks.slack.com/services/xxxxx": 404 no_service`},
		{"aws key id keeps its kind",
			`key AKIAIOSFODNN7EXAMPLE: InvalidClientTokenId`,
			`key AKIAxxxxx: InvalidClientTokenId`},
		{"x-api-key keeps its name and the reason",
			`upstream refused x-api-key abc123def: 403 Forbidden`,
			`upstream refused x-api-key xxxxx: 403 Forbidden`},
		{"stripe key keeps its kind",
			`stripe: Invalid API Key provided: sk_live_4eC39HqLyjWDarjtT1zdp7dc, whsec_5f4dcc3b5aa765d61d8327deb882cf99`,
			`stripe: Invalid API Key provided: sk_live_xxxxx, whsec_xxxxx`},
		{"reason after a key value",
			`connect host=db password=hunter2: authentication failed`,
			`connect host=db password=xxxxx: authentication failed`},
		{"path-like key in a sentence",
			`read app/db/password: hunter2`,
			`read app/db/password: xxxxx`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact.String(tt.in); got != tt.want {
				t.Errorf("String(%q):\ngot  %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// clean are texts without a secret, many of them with a key's name as an
// ordinary word: a name counts only when '=' or ':' follows it.
var clean = []string{
	"host=db user=app",
	"dial tcp 127.0.0.1:5432: connect: connection refused",
	"no heartbeat for 3s (limit 1s)",
	"connection refused",
	"token bucket empty",
	"passed 3 checks",
	"session expired",
	"auth failed for user app",
	"authorization required",
	"401 Unauthorized: Authorization header missing",
	"cookie jar is empty",
	"http: named cookie not present",
	"the api key is missing",
	"secrets are read from /run/secrets",
	"signed with key 3",
	"x509: certificate signed by unknown authority",
	"transport: authentication handshake failed: credentials: cannot check peer: missing auth info",
	"session: closed by peer",
	"auth: no such user",
	"grant_type=client_credentials",
	"token_type=bearer expires_in=3600",
	"session_timeout=30s max_sessions=10",
	"tokens left: 3",
	`{"status":"pass","checks":{"db":{"status":"pass"}}}`,
	"context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
	"see https://api.slack.com/messaging/webhooks",
	"posted to https://hooks.slack.com/ (no path)",
	"https://hooks.slack.com/services",
	"https://example.com/services/T024BE7LD/B01ABCDEF12/xpLG6cwTd2lJ8pXs1f8q0uAe",
	"time zone Asia/Tokyo, region asia-east1",
	"ASIA-PACIFIC",
	"AKIAEXAMPLE is too short",
	"AKIAIOSFODNN7EXAMPLE0 is too long",
	"XAKIAIOSFODNN7EXAMPLE",
	"akiaiosfodnn7example",
	"pk_live_4eC39HqLyjWDarjtT1zdp7dc is a publishable key",
	"sk_live_short",
	"task_test_0123456789abcdefghij",
	"whsec_ prefix",
	"missing api key",
	"api key rotated",
	"api key 5 of 7 rotated",
	"x-api-key missing",
	"x-api-key header not set",
	"the X-API-Key header is empty",
	"api-key required",
	"apikey authentication disabled",
	"x-api-key v2 deprecated",
	"x-api-key rejected: 401 Unauthorized",
	"x-api-key 401",
	"x_api_key ab12cd34ef is not a header",
	"my api-keys 20240101 rotated",
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
		// The mask and what follows it may spell the password ("xxx ").
		if got := redact.String(in); strings.Contains(strings.ReplaceAll(got, redact.Mask, "\x00"), shown) {
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
