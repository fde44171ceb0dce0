package server

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/probekit/probes"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var epoch = time.Date(2026, 7, 13, 10, 0, 0, 0, time.UTC)

// pieces are what the random texts are made of: plain words, multi-byte
// runes, control and formatting characters, bytes that are not UTF-8,
// long runs, and secrets (each around "Zq7", which must never show).
var pieces = []string{
	"connection refused", " ", "é", "日本語", "🙂", "\u202e", "\x00", "\x1b[31m", "\n", "\r\n", "\t", "\xff\xfe", "\u2028",
	strings.Repeat("x", 700), strings.Repeat("ü", 300), strings.Repeat("\x07", 50),
	" password=Zq7hunter2 ", " token: Zq7tok ", " postgres://app:Zq7pw@db/items ", " Authorization: Bearer Zq7abcdefgh\n",
	" api_key=Zq7key ", " -----BEGIN PRIVATE KEY-----\nZq7MIIEvQ\n-----END PRIVATE KEY----- ",
}

func randText(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(8) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func randReport(r *rand.Rand, gate probes.Kind) probes.Report {
	rep := probes.Report{Gate: gate, Base: probes.Pass}
	for i := range r.IntN(4) {
		st := []probes.Status{probes.Pass, probes.Warn, probes.Fail}[r.IntN(3)]
		c := probes.Result{Name: fmt.Sprintf("c%d", i), Critical: true, Status: st, Time: epoch.Add(time.Duration(r.IntN(1000)) * time.Second)}
		if st != probes.Pass {
			c.Err = errors.New(randText(r))
		}
		rep.Checks = append(rep.Checks, c)
	}
	for i := range r.IntN(3) {
		rep.Tasks = append(rep.Tasks, probes.TaskState{Name: fmt.Sprintf("t%d", i), Done: r.IntN(2) == 0, Failures: r.IntN(5), Err: errors.New(randText(r))})
	}
	return rep
}

// Whatever the transitions and the cause, the message is at most 4096
// bytes of valid UTF-8, every line printable, no secret in it, and its
// first line is the cause.
func TestMessageBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	phases := []probes.Phase{probes.Cold, probes.Warming, probes.Ready, probes.Draining, probes.Stopped, probes.Broken}
	cut := 0 // messages that had to leave transitions out
	for iter := range 100 {
		w := &lastWords{clock: fixedClock{epoch}, log: zap.NewNop()}
		for range r.IntN(40) {
			at := epoch.Add(time.Duration(r.IntN(3600)) * time.Second)
			switch r.IntN(4) {
			case 0:
				w.moved(probes.Transition{From: phases[r.IntN(len(phases))], To: phases[r.IntN(len(phases))], Reason: randText(r), At: at})
			case 1:
				c := probes.CordonChange{Cause: probes.CordonCauses()[r.IntN(3)], At: at,
					Cordon: probes.Cordon{Reason: randText(r), Since: at, Until: at.Add(time.Hour)}, Was: probes.Cordon{Reason: randText(r), Since: epoch},
					By: probes.Author{UID: r.Uint32(), User: randText(r), PID: r.Int32(), Command: randText(r)}}
				w.cordonChanged(c)
			case 2:
				prev, cur := randReport(r, probes.Readiness), randReport(r, probes.Readiness)
				w.reportChanged(&prev, &cur)
			case 3:
				w.note(randText(r))
			}
		}
		cause := randText(r)
		msg := string(w.message(cause))
		if len(msg) > maxMessage {
			t.Fatalf("iteration %d: %d bytes, more than %d", iter, len(msg), maxMessage)
		}
		if !utf8.ValidString(msg) {
			t.Fatalf("iteration %d: not UTF-8: %q", iter, msg)
		}
		for _, c := range msg {
			if c != '\n' && !unicode.IsPrint(c) {
				t.Fatalf("iteration %d: %U is not printable: %q", iter, c, msg)
			}
		}
		if strings.Contains(msg, "Zq7") {
			t.Fatalf("iteration %d: a secret shows: %q", iter, msg)
		}
		if first, _, _ := strings.Cut(msg, "\n"); first != clean(cause, maxCause) {
			t.Fatalf("iteration %d: first line %q, want the cause %q", iter, first, clean(cause, maxCause))
		}
		if strings.HasSuffix(msg, "older transitions left out)") {
			cut++
		}
	}
	if cut < 10 {
		t.Errorf("only %d messages of 100 were cut to fit: the test is too gentle", cut)
	}
}

// Transitions come newest first, and those that do not fit are counted in
// the last line; a task's failures in a row share one line.
func TestMessageNewestFirst(t *testing.T) {
	w := &lastWords{clock: fixedClock{epoch}, log: zap.NewNop()}
	for i := range 200 {
		w.moved(probes.Transition{From: probes.Ready, To: probes.Warming, Reason: fmt.Sprintf("reload %d %s", i, strings.Repeat("-", 60)), At: epoch.Add(time.Duration(i) * time.Second)})
	}
	msg := string(w.message("stopped"))
	lines := strings.Split(msg, "\n")
	if len(msg) > maxMessage || lines[0] != "stopped" || !strings.Contains(lines[1], "reload 199 ") || !strings.Contains(lines[2], "reload 198 ") {
		t.Fatalf("got %d bytes:\n%s", len(msg), msg)
	}
	shown := len(lines) - 2
	if want := fmt.Sprintf("(%d older transitions left out)", 200-shown); lines[len(lines)-1] != want {
		t.Errorf("last line: got %q, want %q", lines[len(lines)-1], want)
	}

	w = &lastWords{clock: fixedClock{epoch}, log: zap.NewNop()}
	prev := probes.Report{Gate: probes.Startup, Tasks: []probes.TaskState{{Name: "cache"}}}
	for i := 1; i <= 3; i++ {
		cur := probes.Report{Gate: probes.Startup, Tasks: []probes.TaskState{{Name: "cache", Failures: i, Err: errors.New("refused")}}}
		w.reportChanged(&prev, &cur)
		prev = cur
	}
	if got, want := string(w.message("x")), "x\n2026-07-13T10:00:00.000Z warm-up task cache failed (3 failures so far): refused"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A cordon's line names who set it, and the uncordon's who lifted it,
// as the other surfaces do; one lifted by its time limit names nobody.
func TestMessageCordonAuthor(t *testing.T) {
	w := &lastWords{clock: fixedClock{epoch}, log: zap.NewNop()}
	alice := probes.Author{UID: 1000, User: "alice", PID: 4242, Command: "probectl cordon -reason disk swap"}
	bob := probes.Author{UID: 1001, PID: 77}
	cordon := probes.Cordon{Reason: "disk swap", Since: epoch, Until: epoch.Add(time.Hour), By: alice}
	w.cordonChanged(probes.CordonChange{Cause: probes.CauseCordoned, At: epoch, Cordon: cordon, By: alice})
	w.cordonChanged(probes.CordonChange{Cause: probes.CauseUncordoned, At: epoch.Add(time.Minute), Was: cordon, By: bob})
	w.cordonChanged(probes.CordonChange{Cause: probes.CauseLifted, At: epoch.Add(2 * time.Minute), Was: cordon})
	got := string(w.message("stopped"))
	for _, want := range []string{
		"cordoned until 2026-07-13T11:00:00.000Z: disk swap (by uid 1000 (alice), pid 4242: probectl cordon -reason disk swap)\n",
		"uncordoned after 1m0s: disk swap (by uid 1001, pid 77)\n",
		"lifted after 2m0s: disk swap\n",
	} {
		if !strings.Contains(got+"\n", want) {
			t.Errorf("the message lacks %q:\n%s", want, got)
		}
	}
}

// BenchmarkTerminationWrite measures what the stop waits for: the message
// with a full ring of the longest lines, written over the file.
func BenchmarkTerminationWrite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "termination-log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	w := &lastWords{path: path, clock: fixedClock{epoch}, log: zap.NewNop()}
	for i := range recent {
		w.note(fmt.Sprintf("check readiness/postgres pass -> fail %d: %s", i, strings.Repeat("dial tcp 10.0.0.1:5432: connect: connection refused; ", 10)))
	}
	cause := `restarted by the kubelet: SIGTERM while liveness fails: check "worker" failing since 2026-07-13T10:00:00.000Z (for 42s): no tick for 12s`
	b.ReportAllocs()
	for b.Loop() {
		w.stopping(cause)
	}
}
