package fleet

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzParse feeds parse what an instance might send: it never panics, and
// every text it keeps is printable and bounded.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"status":"pass","phase":"ready","gates":{"readiness":"pass"},"checks":{"db:responseTime":[{"status":"pass","gate":"readiness"}]}}`))
	f.Add([]byte(`{"status":"fail","notes":["phase: warming; not ready"],"cordon":{"reason":"x\u001b[2J"}}`))
	f.Add([]byte(`{"status":"warn","checks":{":":[{"status":"fail"}],"a\u202e:b":[{"status":"fail","gate":"\u0000"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := Instance{Failing: []string{}, Checks: []Check{}}
		if err := parse(bytes.NewReader(b), &in); err != nil {
			if in.Reachable {
				t.Fatal("reachable after an error")
			}
			return
		}
		texts := []string{in.Status, in.Phase, in.Cordon, in.CordonUntil, in.Since, in.Readiness}
		texts = append(texts, in.Failing...)
		for _, c := range in.Checks {
			texts = append(texts, c.Name, c.Status)
		}
		for _, s := range texts {
			if !utf8.ValidString(s) || len(s) > 2*(maxText+3)+1 {
				t.Fatalf("kept %q", s)
			}
			if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
				t.Fatalf("kept an unprintable character in %q", s)
			}
		}
	})
}
