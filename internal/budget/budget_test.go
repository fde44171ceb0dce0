package budget

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(1e9, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// withClock returns a budget for cfg on a clock of its own.
func withClock(t *testing.T, cfg Config) (*Budget, *clock) {
	t.Helper()
	clk := &clock{}
	cfg.Now = clk.Now
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, clk
}

// holder records how it was cut.
type holder struct {
	cut      atomic.Bool
	deadline atomic.Bool
}

func (h *holder) Close() error { h.cut.Store(true); return nil }

func (h *holder) SetDeadline(t time.Time) error {
	h.deadline.Store(t.Before(time.Now()))
	return nil
}

// step is one move of a table case: take a place (wanting it granted or
// refused, and naming the place it cuts), touch or release one, or wait.
type step struct {
	op      string // "take", "touch", "release", "wait"
	name    string
	class   Class
	refused bool   // take: refused
	cuts    string // take: the place cut for it
	d       time.Duration
	noCut   bool // take: its holder is nil, never to be cut
}

func take(name string, c Class) step    { return step{op: "take", name: name, class: c} }
func refused(name string, c Class) step { return step{op: "take", name: name, class: c, refused: true} }
func cuts(name string, c Class, victim string) step {
	return step{op: "take", name: name, class: c, cuts: victim}
}
func touch(name string) step      { return step{op: "touch", name: name} }
func release(name string) step    { return step{op: "release", name: name} }
func wait(d time.Duration) step   { return step{op: "wait", d: d} }
func uncuttable(name string) step { return step{op: "take", name: name, noCut: true} }

func TestBudget(t *testing.T) {
	quietest := Policy{Evict: true}
	patient := Policy{Evict: true, Quiet: 10 * time.Second}
	silentFirst := Policy{Evict: true, Quiet: 10 * time.Second, SilentFirst: true}
	for _, tc := range []struct {
		name    string
		cfg     Config
		steps   []step
		held    int
		refused uint64
		evicted uint64
	}{
		{name: "refuses beyond the bound", cfg: Config{Max: 2},
			steps: []step{take("a", Common), take("b", Common), refused("c", Common)},
			held:  2, refused: 1},
		{name: "a release makes room, once", cfg: Config{Max: 2},
			steps: []step{take("a", Common), take("b", Common), release("a"), release("a"), take("c", Common), refused("d", Common)},
			held:  2, refused: 1},
		{name: "reserved places for the privileged only", cfg: Config{Max: 4, Reserved: 1},
			steps: []step{take("a", Common), take("b", Common), take("c", Common), refused("d", Common), take("e", Privileged), refused("f", Privileged)},
			held:  4, refused: 2},
		{name: "the privileged filling the common places leave none to the common", cfg: Config{Max: 4, Reserved: 1},
			steps: []step{take("a", Privileged), take("b", Privileged), take("c", Privileged), refused("d", Common), take("e", Privileged)},
			held:  4, refused: 1},
		{name: "evicts the place untouched longest", cfg: Config{Max: 3, Policy: quietest},
			steps: []step{take("a", Common), wait(1), take("b", Common), wait(1), take("c", Common), wait(1), touch("a"), wait(1), cuts("d", Common, "b"), cuts("e", Common, "c"), cuts("f", Common, "a")},
			held:  3, evicted: 3},
		{name: "evicts only what was quiet long enough", cfg: Config{Max: 2, Policy: patient},
			steps: []step{take("a", Common), take("b", Common), wait(9 * time.Second), refused("c", Common), touch("b"), wait(time.Second), cuts("d", Common, "a"), refused("e", Common)},
			held:  2, refused: 2, evicted: 1},
		{name: "silent places go first, however new", cfg: Config{Max: 3, Policy: silentFirst},
			steps: []step{take("a", Common), touch("a"), wait(time.Minute), take("b", Common), wait(1), take("c", Common), wait(1), cuts("d", Common, "b"), wait(1), cuts("e", Common, "c"), wait(1), cuts("f", Common, "d"), touch("e"), touch("f"), cuts("g", Common, "a"), cuts("h", Common, "g"), touch("h"), refused("i", Common)},
			held:  3, refused: 1, evicted: 5},
		{name: "a nil holder is never cut", cfg: Config{Max: 2, Policy: quietest},
			steps: []step{uncuttable("a"), take("b", Common), cuts("c", Common, "b"), cuts("d", Common, "c")},
			held:  2, evicted: 2},
		{name: "the common never cut the privileged", cfg: Config{Max: 2, Reserved: 1, Policy: quietest},
			steps: []step{take("a", Privileged), refused("b", Common), release("a"), take("c", Common), take("d", Privileged), cuts("e", Privileged, "c"), refused("f", Common)},
			held:  2, refused: 2, evicted: 1},
		{name: "a released place is not cut", cfg: Config{Max: 2, Policy: quietest},
			steps: []step{take("a", Common), take("b", Common), release("a"), take("c", Common), cuts("d", Common, "b")},
			held:  2, evicted: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, clk := withClock(t, tc.cfg)
			places := map[string]*Place{}
			holders := map[string]*holder{}
			for i, s := range tc.steps {
				switch s.op {
				case "take":
					h := &holder{}
					var closer interface{ Close() error } = h
					if s.noCut {
						closer = nil
					}
					before := map[string]bool{}
					for n, h := range holders {
						before[n] = h.cut.Load()
					}
					p, ok := b.Acquire(s.class, closer)
					if ok == s.refused {
						t.Fatalf("step %d: take %s: got granted %v, want %v", i, s.name, ok, !s.refused)
					}
					for n, h := range holders {
						if got, want := h.cut.Load() && !before[n], n == s.cuts; got != want {
							t.Fatalf("step %d: take %s: %s cut %v, want %v", i, s.name, n, got, want)
						}
						if n == s.cuts && !h.deadline.Load() {
							t.Errorf("step %d: %s cut without a past deadline", i, n)
						}
					}
					if ok {
						places[s.name], holders[s.name] = p, h
					}
				case "touch":
					places[s.name].Touch()
				case "release":
					places[s.name].Release()
				case "wait":
					clk.Add(s.d)
				}
			}
			if got := b.Held(); got != tc.held {
				t.Errorf("held: got %d, want %d", got, tc.held)
			}
			if got := b.Refused(); got != tc.refused {
				t.Errorf("refused: got %d, want %d", got, tc.refused)
			}
			if got := b.Evicted(); got != tc.evicted {
				t.Errorf("evicted: got %d, want %d", got, tc.evicted)
			}
		})
	}
}

func TestNewRefusesBadConfigs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no places", Config{}},
		{"a negative reserve", Config{Max: 2, Reserved: -1}},
		{"every place reserved", Config{Max: 2, Reserved: 2}},
		{"a negative quiet", Config{Max: 2, Policy: Policy{Evict: true, Quiet: -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := New(tc.cfg); err == nil {
				t.Errorf("got %v, nil; want an error", b)
			}
		})
	}
}

// check verifies what must hold of b at any moment: its bound, its
// reserve, and the index each held place keeps.
func check(b *Budget) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	common := 0
	for i, p := range b.held {
		if p.i != i {
			return fmt.Errorf("place at %d says it is at %d", i, p.i)
		}
		if p.class == Common {
			common++
		}
	}
	switch {
	case len(b.held) > b.cfg.Max:
		return fmt.Errorf("%d places held, bound %d", len(b.held), b.cfg.Max)
	case common > b.cfg.Max-b.cfg.Reserved:
		return fmt.Errorf("%d common places held, %d of %d reserved", common, b.cfg.Reserved, b.cfg.Max)
	}
	return nil
}

// racer is a holder in the randomised test. Its Close is the cut, called
// within the Acquire that cuts it.
type racer struct {
	clk   *clock
	born  time.Time
	last  atomic.Pointer[time.Time] // of the last Touch; nil: never
	cut   atomic.Bool
	quiet time.Duration
	first bool // SilentFirst
	bad   *atomic.Value
}

func (r *racer) Close() error {
	if r.cut.Swap(true) {
		r.bad.Store(errors.New("a place was cut twice"))
	}
	since, silent := r.born, true
	if l := r.last.Load(); l != nil {
		since, silent = *l, false
	}
	if q := r.clk.Now().Sub(since); q < r.quiet && !(silent && r.first) {
		r.bad.Store(fmt.Errorf("a place quiet for %s was cut; the policy wants %s", q, r.quiet))
	}
	return nil
}

// Many goroutines take, touch and release places while the clock moves
// and the budget cuts: the budget's bound and reserve always hold, a place
// is cut only when quiet long enough, and every place is given back
// exactly once, by its owner or by a cut. Taking and moving the clock
// exclude touching, by a lock of the test's, so that a cut place's last
// touch is known when it is cut.
func TestRandomInterleavings(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"refuse, a reserve", Config{Max: 8, Reserved: 2}},
		{"evict the quietest", Config{Max: 8, Policy: Policy{Evict: true}}},
		{"evict the quiet, a reserve", Config{Max: 8, Reserved: 3, Policy: Policy{Evict: true, Quiet: 5 * time.Millisecond}}},
		{"silent first", Config{Max: 8, Reserved: 1, Policy: Policy{Evict: true, Quiet: 5 * time.Millisecond, SilentFirst: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, clk := withClock(t, tc.cfg)
			var (
				order    sync.RWMutex // Acquire and the clock exclusive; Touch shared
				bad      atomic.Value
				taken    atomic.Int64
				released atomic.Int64 // by a Release that reported it
				workers  sync.WaitGroup
			)
			stop := make(chan struct{})
			checked := make(chan struct{})
			go func() {
				defer close(checked)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := check(b); err != nil {
						bad.Store(err)
					}
					runtime.Gosched()
				}
			}()
			for w := range 16 {
				workers.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					type hold struct {
						r *racer
						p *Place
					}
					var mine []hold
					give := func(i int) {
						h := mine[i]
						mine = append(mine[:i], mine[i+1:]...)
						if h.p.Release() {
							released.Add(1)
						}
						if h.p.Release() {
							bad.Store(errors.New("a place was released twice"))
						}
					}
					for range 2000 {
						switch op := rng.IntN(10); {
						case op < 4:
							r := &racer{clk: clk, quiet: tc.cfg.Policy.Quiet, first: tc.cfg.Policy.SilentFirst, bad: &bad}
							order.Lock()
							r.born = clk.Now()
							p, ok := b.Acquire(Class(rng.IntN(2)), r)
							order.Unlock()
							if ok {
								taken.Add(1)
								mine = append(mine, hold{r, p})
							}
						case op < 6 && len(mine) > 0:
							h := mine[rng.IntN(len(mine))]
							order.RLock()
							now := clk.Now()
							h.p.Touch()
							h.r.last.Store(&now)
							order.RUnlock()
						case op < 9 && len(mine) > 0:
							give(rng.IntN(len(mine)))
						default:
							order.Lock()
							clk.Add(time.Duration(rng.IntN(3)) * time.Millisecond)
							order.Unlock()
						}
					}
					for len(mine) > 0 {
						give(0)
					}
				})
			}
			workers.Wait()
			close(stop)
			<-checked
			if err, _ := bad.Load().(error); err != nil {
				t.Fatal(err)
			}
			if err := check(b); err != nil {
				t.Fatal(err)
			}
			if got := b.Held(); got != 0 {
				t.Errorf("held at the end: got %d, want 0", got)
			}
			if got, want := released.Load()+int64(b.Evicted()), taken.Load(); got != want {
				t.Errorf("released or cut: got %d, want %d (the places taken)", got, want)
			}
			if !tc.cfg.Policy.Evict && b.Evicted() != 0 {
				t.Errorf("evicted with a policy that refuses: got %d, want 0", b.Evicted())
			}
			if b.Refused() == 0 {
				t.Error("nothing refused: the bound was never reached")
			}
			t.Logf("taken %d, refused %d, evicted %d", taken.Load(), b.Refused(), b.Evicted())
		})
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"refuse", Config{Max: 256}},
		{"evict", Config{Max: 256, Policy: Policy{Evict: true, Quiet: time.Second, SilentFirst: true}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bud, err := New(tc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			for range tc.cfg.Max / 2 { // half full, as a busy listener
				bud.Acquire(Common, nil)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, ok := bud.Acquire(Common, nil)
					if !ok {
						b.Fatal("refused below the bound")
					}
					p.Touch()
					p.Release()
				}
			})
		})
	}
}
