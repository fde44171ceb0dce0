package readout_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/readout"
	"github.com/probekit/probes/server"
)

// key names a reading as a series: its fact and what tells it apart.
func key(r *readout.Reading) string {
	switch {
	case r.Fact == readout.Phase:
		return fmt.Sprintf("phase/%s", r.Phase)
	case r.Fact == readout.GateStatus:
		return fmt.Sprintf("gate/%s/%s", r.Gate, r.Status)
	case r.Fact == readout.CheckStatus:
		return fmt.Sprintf("check/%s/%s/%s", r.Gate, r.Name, r.Status)
	case r.Fact.OfCheck():
		return fmt.Sprintf("%d/%s/%s", r.Fact, r.Gate, r.Name)
	case r.Fact == readout.TaskProgress:
		return "task/" + r.Name
	case r.Fact == readout.LastEnd:
		return "ended/" + r.Name
	}
	return fmt.Sprint(r.Fact)
}

func read(f probes.Facts, warmup time.Duration) map[string]float64 {
	got := map[string]float64{}
	readout.Read(&f, warmup, func(r *readout.Reading) { got[key(r)] = r.Value })
	return got
}

func TestRead(t *testing.T) {
	at := time.Unix(1_700_000_000, 250_000_000)
	warming := probes.Facts{
		Phase: probes.Warming,
		Gates: []probes.Report{
			{Gate: probes.Startup, Base: probes.Fail, Tasks: []probes.TaskState{
				{Name: "cache", Fraction: 0.5}, {Name: "schema", Done: true},
			}},
			{Gate: probes.Readiness, Base: probes.Pass, Checks: []probes.Result{
				{Name: "db", Critical: true, Status: probes.Fail, Time: at, Stale: true, ConsecutiveFailures: 3, Flapping: true, Err: errors.New("refused")},
				{Name: "cache", Critical: false, Status: probes.Fail}, // no result yet
			}},
		},
	}
	ready := probes.Facts{Phase: probes.Ready, Started: true, Cordon: probes.Cordon{Reason: "swap", Since: at}}
	tests := []struct {
		name   string
		facts  probes.Facts
		warmup time.Duration
		want   map[string]float64 // a selection of the readings
		count  int                // how many readings in all
	}{
		{"warming", warming, 1500 * time.Millisecond, map[string]float64{
			"phase/cold":                 0,
			"phase/warming":              1,
			"phase/broken":               0,
			fmt.Sprint(readout.Cordoned): 0,
			"gate/startup/fail":          1,
			"gate/startup/pass":          0,
			"gate/readiness/fail":        1, // db is critical
			"check/readiness/db/fail":    1,
			"check/readiness/db/pass":    0,
			"check/readiness/cache/fail": 1,
			fmt.Sprintf("%d/readiness/db", readout.LastResult):          1_700_000_000.25, // exactly: float64(UnixNano())/1e9 is off by 2e-7
			fmt.Sprintf("%d/readiness/cache", readout.LastResult):       0,
			fmt.Sprintf("%d/readiness/db", readout.Stale):               1,
			fmt.Sprintf("%d/readiness/db", readout.ConsecutiveFailures): 3,
			fmt.Sprintf("%d/readiness/db", readout.Flapping):            1,
			fmt.Sprintf("%d/readiness/cache", readout.Flapping):         0,
			"task/cache":                       0.5,
			"task/schema":                      1,
			fmt.Sprint(readout.WarmupProgress): 0.75,
			fmt.Sprint(readout.WarmupDuration): 1.5,
			fmt.Sprint(readout.Restarts):       0,
		}, 6 + 1 + 1 + 2*3 + 2*7 + 2 + 2},
		{"ready, cordoned, no gates", ready, 0, map[string]float64{
			"phase/ready":                      1,
			fmt.Sprint(readout.Cordoned):       1,
			fmt.Sprint(readout.WarmupProgress): 1, // started, no tasks
			fmt.Sprint(readout.WarmupDuration): 0,
		}, 6 + 1 + 1 + 2},
		{"cold, no gates", probes.Facts{}, 0, map[string]float64{
			"phase/cold":                       1,
			fmt.Sprint(readout.WarmupProgress): 0,
			fmt.Sprint(readout.Restarts):       0, // without a past too
		}, 6 + 1 + 1 + 2},
		{"after a break", probes.Facts{Past: probes.Past{Restarts: 3, Ended: probes.EndedBroken, End: at, Cause: "secret"}}, 0, map[string]float64{
			fmt.Sprint(readout.Restarts):    3,
			"ended/broken":                  1,
			fmt.Sprint(readout.LastEndTime): 1_700_000_000.25,
		}, 6 + 1 + 3 + 2},
		{"after a kill", probes.Facts{Past: probes.Past{Restarts: 1, Ended: probes.EndedSilent}}, 0, map[string]float64{
			fmt.Sprint(readout.Restarts): 1,
			"ended/without a word":       1, // and no LastEndTime: the count says so
		}, 6 + 1 + 2 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			f := tt.facts
			readout.Read(&f, tt.warmup, func(*readout.Reading) { n++ })
			if n != tt.count {
				t.Errorf("got %d readings, want %d", n, tt.count)
			}
			got := read(tt.facts, tt.warmup)
			for k, want := range tt.want {
				if v, ok := got[k]; !ok || v != want {
					t.Errorf("%s: got %v (present %v), want %v", k, v, ok, want)
				}
			}
		})
	}
}

// No reading carries the past's cause, which is for authorised readers
// only: the exporters' readers are anonymous.
func TestPastWithoutCause(t *testing.T) {
	const secret = "s3cr3t-token"
	f := probes.Facts{Past: probes.Past{Restarts: 2, Ended: probes.EndedClosed, End: time.Unix(1, 0), Cause: secret}}
	readout.Read(&f, 0, func(r *readout.Reading) {
		if strings.Contains(fmt.Sprintf("%+v", *r), secret) {
			t.Errorf("a reading carries the cause: %+v", *r)
		}
	})
	if f.Past.Cause != secret {
		t.Error("Read changed the facts it was given")
	}
}

func TestMoves(t *testing.T) {
	var got []string
	for from, to := range readout.Moves() {
		got = append(got, from.String()+">"+to.String())
	}
	if len(got) != 12 {
		t.Errorf("got %d moves %v, want the 12 a lifecycle makes", len(got), got)
	}
	for _, m := range got {
		if m == "ready>ready" || m == "broken>cold" {
			t.Errorf("got the move %s, which no lifecycle makes", m)
		}
	}
}

func TestDrain(t *testing.T) {
	tests := []struct {
		name string
		st   server.Stats
		ok   func(time.Duration) bool
	}{
		{"before", server.Stats{}, func(d time.Duration) bool { return d == 0 }},
		{"over", server.Stats{DrainBegan: time.Now().Add(-time.Hour), Drain: 3 * time.Second}, func(d time.Duration) bool { return d == 3*time.Second }},
		{"going on", server.Stats{DrainBegan: time.Now().Add(-time.Hour)}, func(d time.Duration) bool { return d >= time.Hour }},
		{"began by a clock ahead", server.Stats{DrainBegan: time.Now().Add(time.Hour)}, func(d time.Duration) bool { return d == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readout.Drain(&tt.st); !tt.ok(got) {
				t.Errorf("got %v", got)
			}
		})
	}
}

// Racing first uses of one check make its value once, and every caller
// gets that one.
func TestByCheck(t *testing.T) {
	var made atomic.Int64
	b := readout.NewByCheck(func(gate probes.Kind, name string) *string {
		made.Add(1)
		s := gate.String() + "/" + name
		return &s
	})
	var wg sync.WaitGroup
	got := make([]*string, 8)
	for i := range got {
		wg.Go(func() { got[i] = b.Get(probes.Readiness, "db") })
	}
	wg.Wait()
	for i, p := range got {
		if p != got[0] || *p != "readiness/db" {
			t.Errorf("caller %d got %p %q, want %p readiness/db", i, p, *p, got[0])
		}
	}
	if other := b.Get(probes.Liveness, "db"); *other != "liveness/db" {
		t.Errorf("got %q for liveness's db, want liveness/db", *other)
	}
	if n := made.Load(); n != 2 {
		t.Errorf("got %d values made, want 2", n)
	}
}
