package history_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/testenv/testutil"
)

var stateFiles = [4]string{"history-events.0", "history-events.1", "history-rollups.0", "history-rollups.1"}

// sampleState writes a state directory with two instances, a rotation of
// the events segments and rollups, and returns its four files.
func sampleState(tb testing.TB) [4][]byte { return stateOf(tb, 400) }

// stateOf writes a state directory with two instances, the first with
// records transitions and executions, the second with twice as many, and
// returns its four files.
func stateOf(tb testing.TB, records int) [4][]byte {
	tb.Helper()
	dir := tb.TempDir()
	clock := testutil.NewClock(t0)
	for run := range 2 {
		lc := probes.NewLifecycle(probes.WithClock(clock), probes.Identify(shop))
		h, err := history.New(lc, history.StateDir(dir), history.NoSync())
		if err != nil {
			tb.Fatal(err)
		}
		for i := range records * (run + 1) {
			clock.Add(10 * time.Second)
			h.RecordAt(probes.Readiness, "db", probes.Fail, time.Millisecond, clock.Now())
			h.AddTransition(history.Transition{At: clock.Now(), Subject: "readiness/db", From: "pass", To: "fail", Reason: "refused"})
			if i%50 == 0 {
				h.Flush()
			}
		}
		if run == 0 {
			if err := lc.MarkBroken(os.ErrDeadlineExceeded); err != nil {
				tb.Fatal(err)
			}
		}
		h.Close()
	}
	var out [4][]byte
	for i, name := range stateFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// checkRecalled fails when what was read from any bytes at all is out of
// its bounds.
func checkRecalled(t *testing.T, restarts int, prev []history.Instance) {
	t.Helper()
	if len(prev) > history.MaxPrevious || restarts < len(prev) {
		t.Fatalf("%d restarts, %d instances listed", restarts, len(prev))
	}
	n := 0
	for _, p := range prev {
		n += len(p.Transitions)
		if p.Ended == "" {
			t.Fatalf("an instance that ended in no way: %+v", p)
		}
	}
	if n > history.MaxPreviousTransitions {
		t.Fatalf("%d transitions kept", n)
	}
}

// FuzzRecall feeds the loader any four segment files: it never panics and
// keeps no more than its bounds.
func FuzzRecall(f *testing.F) {
	small := stateOf(f, 3) // small inputs keep the fuzzer quick
	f.Add(small[0], small[1], small[2], small[3])
	s := sampleState(f)
	f.Add(s[0], s[1], s[2], s[3])
	f.Add(s[0][:len(s[0])/2], s[1], s[2][:7], s[3])
	f.Add(s[1], s[0], s[3], s[2]) // each log's files given as the other's
	f.Add([]byte{}, []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, e0, e1, r0, r1 []byte) {
		restarts, prev := history.Recall([2][]byte{e0, e1}, [2][]byte{r0, r1})
		checkRecalled(t, restarts, prev)
	})
}

// Damage anywhere in the files (seeded, so that a failure repeats) is
// never fatal: the loader reads what it can, and the next instance starts
// and writes after it.
func TestStateDamaged(t *testing.T) {
	s := sampleState(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for round := range 200 {
		var files [4][]byte
		for i := range s {
			files[i] = append([]byte(nil), s[i]...)
			if len(files[i]) == 0 {
				continue
			}
			switch rnd.IntN(4) {
			case 0: // a few bytes flipped
				for range 1 + rnd.IntN(4) {
					files[i][rnd.IntN(len(files[i]))] ^= byte(1 + rnd.IntN(255))
				}
			case 1: // cut anywhere
				files[i] = files[i][:rnd.IntN(len(files[i]))]
			case 2: // garbage appended
				for range rnd.IntN(64) {
					files[i] = append(files[i], byte(rnd.IntN(256)))
				}
			}
		}
		restarts, prev := history.Recall([2][]byte{files[0], files[1]}, [2][]byte{files[2], files[3]})
		checkRecalled(t, restarts, prev)
		if round%20 != 0 {
			continue
		}
		for i, name := range stateFiles {
			if err := os.WriteFile(filepath.Join(dir, name), files[i], 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, h := instance(t, dir, history.NoSync())
		h.Close()
		n, after, err := history.ReadState(dir)
		if err != nil || n < 1 || after[len(after)-1].Ended != probes.EndedClosed {
			t.Fatalf("round %d: the instance after the damage: %d restarts, %+v (%v)", round, n, after, err)
		}
	}
}
