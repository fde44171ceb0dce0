package probes

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestIdentityResolve(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	host := func() (string, error) { return "host-1", nil }
	noHost := func() (string, error) { return "", errors.New("no host name") }
	for _, tc := range []struct {
		name string
		id   Identity
		env  map[string]string
		host func() (string, error)
		want Identity
	}{
		{"downward API", Identity{Service: "shop"}, map[string]string{"POD_NAME": "shop-7d9f-x2k", "NODE_NAME": "node-a"}, host,
			Identity{Service: "shop", Instance: "shop-7d9f-x2k", Node: "node-a"}},
		{"no pod: the host", Identity{Service: "shop", Release: "1.2.0"}, nil, host, Identity{Service: "shop", Release: "1.2.0", Instance: "host-1"}},
		{"given wins", Identity{Instance: "mine", Node: "n"}, map[string]string{"POD_NAME": "p", "NODE_NAME": "q"}, host, Identity{Instance: "mine", Node: "n"}},
		{"nothing known", Identity{}, nil, noHost, Identity{}},
		{"control characters dropped", Identity{Service: "sh\nop\x1b[31m", Release: "1\x00.2\x85"}, nil, noHost, Identity{Service: "shop[31m", Release: "1.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.id.resolve(env(tc.env), tc.host); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCleanNameCuts(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got := cleanName(long)
	if len(got) > 253 || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Errorf("cut to %d bytes, valid %v: want at most 253 bytes of whole characters", len(got), utf8.ValidString(got))
	}
	if got := cleanName("bad\xffutf8"); got != "badutf8" {
		t.Errorf("invalid UTF-8: %q", got)
	}
}

func TestFactsCarryIdentity(t *testing.T) {
	t.Setenv("POD_NAME", "shop-0")
	t.Setenv("NODE_NAME", "node-a")
	lc := NewLifecycle(Identify(Identity{Service: "shop", Release: "2.0.1"}))
	want := Identity{Service: "shop", Release: "2.0.1", Instance: "shop-0", Node: "node-a"}
	if got := lc.Facts().Identity; got != want {
		t.Errorf("Facts().Identity %+v, want %+v", got, want)
	}
	if got := NewLifecycle().Identity(); got != (Identity{}) {
		t.Errorf("without Identify: %+v, want zero", got)
	}
}
