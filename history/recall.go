package history

// Reading the state directory back: the instances before this one, their
// last transitions and the quarter hours of their checks.

import (
	"cmp"
	"slices"
	"time"

	"github.com/probekit/probes"
)

const (
	// MaxPrevious bounds the earlier instances a History lists (the newest
	// ones); Restarts counts them all.
	MaxPrevious = 16
	// MaxPreviousTransitions bounds the transitions of earlier instances a
	// History keeps, the newest ones, across the instances it lists.
	MaxPreviousTransitions = 256
	// maxRestored bounds the checks whose quarter hours are taken back.
	maxRestored = 256
	// maxNumber bounds an instance's number; a record with a larger one
	// is left out.
	maxNumber = 1<<31 - 1
)

// Instance is an instance of the service that ran before this one with
// the same state directory (StateDir): in Kubernetes, an earlier run of
// the container within its pod.
type Instance struct {
	// Number counts the instances that ran before it on the directory:
	// 0 for the first, 1 for the first restart, ...
	Number int
	// Identity is the lifecycle's identity then (probes.Identify).
	Identity probes.Identity
	// Start is when it began; End when it ended, zero when it ended
	// without a word.
	Start, End time.Time
	// Ended says how it ended: probes.EndedStopped, EndedBroken,
	// EndedClosed, or EndedSilent when it left no end (killed, out of
	// memory, the machine went down).
	Ended string
	// Cause says why it ended: the reason of its drain, or the error it
	// broke with, masked. Authorised readers only (For).
	Cause string
	// Seen is the last time it was heard of: its end, or its last record.
	Seen time.Time
	// Transitions are its last transitions kept, oldest first.
	Transitions []Transition
}

// Clean reports whether it ended as the program meant it to: stopped, or
// closed.
func (in Instance) Clean() bool {
	return in.Ended == probes.EndedStopped || in.Ended == probes.EndedClosed
}

// For returns in as audience a may read it: anonymous readers learn when
// it ran and how it ended, not why, and its transitions without reasons
// (Transition.For).
func (in Instance) For(a probes.Audience) Instance {
	if a == probes.Authorized {
		return in
	}
	in.Cause = ""
	ts := make([]Transition, len(in.Transitions))
	for i, t := range in.Transitions {
		ts[i] = t.For(a)
	}
	in.Transitions = ts
	return in
}

// recalled is what the state directory holds of earlier instances.
type recalled struct {
	instances map[uint64]*Instance
	last      uint64 // the highest number seen
	any       bool   // whether any instance was seen

	// the newest transitions, in a ring
	trans  []numbered
	next   int
	filled bool

	// by instance, check and quarter: a later record replaces an earlier
	rollups map[rollupKey]rollup
}

type numbered struct {
	number uint64
	t      Transition
}

type rollupKey struct {
	number uint64
	gate   probes.Kind
	check  string
	epoch  int64
}

// recall reads the two logs' segments. It never fails: what cannot be
// read is left out.
func recall(events, rollups [2][]byte) (*recalled, [2]segmentInfo, [2]segmentInfo) {
	r := &recalled{instances: map[uint64]*Instance{}, rollups: map[rollupKey]rollup{}}
	ev := readLog(logEvents, events, r.event)
	ro := readLog(logRollups, rollups, r.rollup)
	return r, ev, ro
}

// instance returns the instance numbered n (at most maxNumber).
func (r *recalled) instance(n uint64) *Instance {
	in := r.instances[n]
	if in == nil {
		in = &Instance{Number: int(n)}
		r.instances[n] = in
	}
	if !r.any || n > r.last {
		r.last, r.any = n, true
	}
	return in
}

func seen(in *Instance, t time.Time) {
	if t.After(in.Seen) {
		in.Seen = t
	}
}

func (r *recalled) event(payload []byte) {
	f := fields{b: payload}
	switch f.byte() {
	case kindStart:
		n, start, id := f.u(), f.t(), f.identity()
		if f.bad || n > maxNumber {
			return
		}
		in := r.instance(n)
		in.Start, in.Identity = start, id
		seen(in, start)
	case kindEnd:
		n, e := f.u(), ending{at: f.t(), ended: f.s(maxField), cause: f.s(maxReason)}
		if f.bad || n > maxNumber {
			return
		}
		in := r.instance(n)
		in.End, in.Ended, in.Cause = e.at, e.ended, e.cause
		seen(in, e.at)
	case kindPrevious:
		var p Instance
		n := f.u()
		p.Start, p.Identity, p.End = f.t(), f.identity(), f.t()
		p.Ended, p.Cause, p.Seen = f.s(maxField), f.s(maxReason), f.t()
		if f.bad || n > maxNumber {
			return
		}
		in := r.instance(n)
		// What the instance's own records say comes first.
		in.Start = cmp.Or(in.Start, p.Start)
		if in.Identity == (probes.Identity{}) {
			in.Identity = p.Identity
		}
		if in.Ended == "" {
			in.End, in.Ended, in.Cause = p.End, p.Ended, p.Cause
		}
		seen(in, p.Seen)
	case kindTransition:
		n := f.u()
		t := Transition{At: f.t(), Subject: f.s(maxField), From: f.s(maxField), To: f.s(maxField), Reason: f.s(maxReason)}
		if len(f.b) > 0 {
			t.By = f.s(maxReason)
		}
		if f.bad || n > maxNumber {
			return
		}
		seen(r.instance(n), t.At)
		e := numbered{n, t}
		if len(r.trans) < MaxPreviousTransitions {
			r.trans = append(r.trans, e)
			return
		}
		r.trans[r.next] = e
		r.next = (r.next + 1) % len(r.trans)
		r.filled = true
	}
}

func (r *recalled) rollup(payload []byte) {
	f := fields{b: payload}
	if f.byte() != kindRollup {
		return
	}
	n := f.u()
	ro := rollup{gate: probes.Kind(f.byte()), check: f.s(maxField)}
	ro.slot.epoch = f.i()
	for i := range ro.slot.counts {
		ro.slot.counts[i] = f.u32()
	}
	for i := range ro.slot.lat {
		ro.slot.lat[i] = f.u32()
	}
	ro.slot.max = time.Duration(f.i())
	if f.bad || ro.slot.max < 0 || n > maxNumber {
		return
	}
	r.rollups[rollupKey{n, ro.gate, ro.check, ro.slot.epoch}] = ro
}

// restarts is how many instances came before the next one.
func (r *recalled) restarts() uint64 {
	if !r.any {
		return 0
	}
	return r.last + 1
}

// previous lists the newest MaxPrevious instances, oldest first, with
// their transitions; an instance that left no end ended without a word.
func (r *recalled) previous() []Instance {
	numbers := make([]uint64, 0, len(r.instances))
	for n := range r.instances {
		numbers = append(numbers, n)
	}
	slices.Sort(numbers)
	if len(numbers) > MaxPrevious {
		numbers = numbers[len(numbers)-MaxPrevious:]
	}
	out := make([]Instance, len(numbers))
	at := make(map[uint64]int, len(numbers))
	for i, n := range numbers {
		out[i] = *r.instances[n]
		if out[i].Ended == "" {
			out[i].End, out[i].Cause = time.Time{}, ""
			out[i].Ended = probes.EndedSilent
		}
		at[n] = i
	}
	ordered := r.trans
	if r.filled {
		ordered = append(append([]numbered(nil), r.trans[r.next:]...), r.trans[:r.next]...)
	}
	for _, e := range ordered {
		if i, ok := at[e.number]; ok {
			out[i].Transitions = append(out[i].Transitions, e.t)
		}
	}
	return out
}

// restored sums the quarter hours of every earlier instance by check,
// those of the day before now only, for at most maxRestored checks.
func (r *recalled) restored(now time.Time) map[key]*[QuarterBuckets]slot {
	present := now.UnixNano() / int64(15*time.Minute)
	out := map[key]*[QuarterBuckets]slot{}
	for k, ro := range r.rollups {
		e := k.epoch
		if e > present || e <= present-QuarterBuckets {
			continue
		}
		ck := key{ro.gate, ro.check}
		q := out[ck]
		if q == nil {
			if len(out) == maxRestored {
				continue
			}
			q = new([QuarterBuckets]slot)
			out[ck] = q
		}
		merge(&q[wrap(e, QuarterBuckets)], &ro.slot)
	}
	return out
}

// merge adds the executions of from to sl, which is emptied first when it
// holds another quarter hour.
func merge(sl, from *slot) {
	if sl.epoch != from.epoch {
		*sl = slot{epoch: from.epoch}
	}
	for i := range sl.counts {
		sl.counts[i] += from.counts[i]
	}
	for i := range sl.lat {
		sl.lat[i] += from.lat[i]
	}
	sl.max = max(sl.max, from.max)
}
