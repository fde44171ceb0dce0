package history

// The state directory: the history written to bounded files in the
// background, and read back by the next instance.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/redact"
)

// FlushInterval is how often, at most, what was recorded waits before it
// is written to the state directory.
const FlushInterval = time.Second

// MaxStateSize is the most the state directory's files hold, in bytes:
// four segments of 64 KiB (two for the instances and their transitions,
// two for the rollups).
const MaxStateSize = 4 * segmentSize

// errInUse is a state directory whose lock another process holds.
var errInUse = errors.New("in use by another process")

// StateDir keeps the history in files in dir too, so that the instances
// that follow (a container restarted within its pod, with dir on an
// emptyDir volume) know of this one: when it began and ended, why it
// ended, and its last transitions and rollups. New reads what the
// instances before it left there (History.Previous, History.Restarts,
// probes.Lifecycle.Past) and appends this one's.
//
// The files never hold more than MaxStateSize (256 KiB): the oldest
// records go first. Recording never waits for them: a goroutine the
// lifecycle runs (probes.Lifecycle.Go) writes what was recorded within
// FlushInterval (1 s), syncing the files when it wrote, a check's quarter
// hour once it has closed, and the end (the lifecycle going Stopped or
// Broken, or Close) at once. A process killed outright (SIGKILL, out of
// memory) loses what was recorded in its last FlushInterval and the
// quarter hour in progress, and leaves no end: the next instance lists it
// as having ended without a word (probes.EndedSilent). The machine going
// down loses no more, since every write is synced. A file cut short or
// damaged is read up to its last whole record, never failing. A failed
// write is dropped (History.StateErr says why) and never stops the
// service.
//
// dir must be a directory that the process may write; New fails when it
// is not, or when another process has it (the files are locked). Default:
// none, the history lives in memory only.
func StateDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New(`StateDir(""): need a directory`)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("StateDir(%q): %w", dir, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("StateDir(%q): not a directory", dir)
		}
		c.stateDir = dir
		return nil
	}
}

// files is a History's state directory.
type files struct {
	h                *History
	lockf            *os.File
	events, rollups  *segLog
	number           uint64          // this instance's: how many came before it
	start            time.Time       // when it began
	id               probes.Identity // its identity
	previous         []Instance      // read at the start, carried to every events segment
	nosync           bool
	pokeAt           uint64        // transitions waiting that wake the writer early
	copied           atomic.Uint64 // transitions taken from the ring so far (History.added's count)
	nudge            chan struct{} // capacity 1: something to write now
	done             chan struct{} // closed by close
	late             sync.WaitGroup
	endMu            sync.Mutex // guards the following four
	running, closing bool
	drain            string  // the reason of the last drain
	end              *ending // set when the lifecycle stops or breaks

	mu       sync.Mutex // one flush at a time; guards the following
	shut     bool       // the files are closed
	buf      []byte
	ends     []int
	batch    []Transition
	slots    []slot
	quarters map[key]int64 // the newest closed quarter hour written, by check
	wroteEnd *ending
	err      error
}

// openState opens and locks the state directory of h and reads what the
// instances before it left there; begin then writes that this one has
// begun.
func openState(h *History, cfg *config) (*files, *recalled, error) {
	dir := cfg.stateDir
	fail := func(err error) error { return fmt.Errorf("history: StateDir(%q): %w", dir, err) }
	lockf, err := os.OpenFile(filepath.Join(dir, "history.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fail(fmt.Errorf("not writable: %w", err))
	}
	if err := lock(lockf); err != nil {
		lockf.Close()
		return nil, nil, fail(err)
	}
	f := &files{h: h, lockf: lockf, nosync: cfg.nosync, pokeAt: uint64(max(len(h.ring)/2, 1)),
		nudge: make(chan struct{}, 1), done: make(chan struct{}), quarters: map[key]int64{}}
	var evData, roData [2][]byte
	if f.events, evData, err = openLog(dir, "history-events", logEvents); err == nil {
		f.rollups, roData, err = openLog(dir, "history-rollups", logRollups)
	}
	if err != nil {
		f.closeFiles()
		return nil, nil, fail(err)
	}
	r, evInfo, roInfo := recall(evData, roData)
	if err := errors.Join(f.events.resume(evInfo), f.rollups.resume(roInfo)); err != nil {
		f.closeFiles()
		return nil, nil, fail(fmt.Errorf("not writable: %w", err))
	}
	f.number, f.previous = r.restarts(), r.previous()
	f.start, f.id = h.lc.Clock().Now(), h.lc.Identity()
	return f, r, nil
}

// begin writes that this instance has begun, before New returns: one
// killed a moment later counts among the restarts.
func (f *files) begin(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = appendStart(f.buf[:0], f.number, f.start, f.id)
	_, err := f.events.append(f.buf, []int{len(f.buf)}, f.carry)
	if err == nil && !f.nosync {
		err = f.events.sync()
	}
	if err != nil {
		return fmt.Errorf("history: StateDir(%q): not writable: %w", dir, err)
	}
	return nil
}

// past is what the lifecycle is told of the instances before this one.
func (f *files) past() probes.Past {
	p := probes.Past{Restarts: int(min(f.number, maxNumber))}
	if n := len(f.previous); n > 0 {
		last := f.previous[n-1]
		p.Ended, p.End, p.Cause = last.Ended, last.End, last.Cause
	}
	return p
}

// carry is what heads every new events segment: the instances before this
// one (their transitions stay behind) and this one's start and end.
func (f *files) carry(b []byte) []byte {
	for i := range f.previous {
		b = appendPrevious(b, &f.previous[i])
	}
	b = appendStart(b, f.number, f.start, f.id)
	if f.wroteEnd != nil {
		b = appendEnd(b, f.number, *f.wroteEnd)
	}
	return b
}

// poke wakes the writer.
func (f *files) poke() {
	select {
	case f.nudge <- struct{}{}:
	default:
	}
}

// added is told the count of transitions recorded, under the History's
// lock: a backlog of half the ring wakes the writer before the ring
// overwrites what it has not taken.
func (f *files) added(n uint64) {
	if n-f.copied.Load() >= f.pokeAt {
		f.poke()
	}
}

// run is the writer: the lifecycle runs it (Go) until its Run ends or the
// History closes, writing within FlushInterval what was recorded, and at
// once the end.
func (f *files) run(ctx context.Context) error {
	f.endMu.Lock()
	if f.closing {
		f.endMu.Unlock()
		return nil
	}
	f.running = true
	f.endMu.Unlock()
	defer func() {
		f.endMu.Lock()
		f.running = false
		f.endMu.Unlock()
		f.flush(false)
	}()
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.done:
			return nil
		case <-t.C:
		case <-f.nudge:
		}
		f.flush(false)
	}
}

// moved follows the lifecycle's moves for the end: the drain's reason, and
// the stop or the break, which is written at once (by the writer, or,
// once the lifecycle's Run has ended, by a goroutine of the History's).
func (f *files) moved(t probes.Transition) {
	var e *ending
	switch t.To {
	case probes.Draining:
		f.endMu.Lock()
		f.drain = redact.String(t.Reason)
		f.endMu.Unlock()
		return
	case probes.Stopped:
		f.endMu.Lock()
		e = &ending{at: t.At, ended: probes.EndedStopped, cause: cmp.Or(f.drain, t.Reason)}
		f.endMu.Unlock()
	case probes.Broken:
		e = &ending{at: t.At, ended: probes.EndedBroken, cause: redact.String(t.Reason)}
	default:
		return
	}
	f.endMu.Lock()
	if f.closing {
		f.endMu.Unlock()
		return
	}
	f.end = e
	running := f.running
	if !running {
		f.late.Add(1)
	}
	f.endMu.Unlock()
	if running {
		f.poke()
		return
	}
	go func() {
		defer f.late.Done()
		f.flush(false)
	}()
}

// closed is the end of an instance whose History closed without seeing
// the lifecycle stop or break.
func (f *files) closed() *ending {
	lc := f.h.lc
	switch p := lc.Phase(); p {
	case probes.Stopped:
		f.endMu.Lock()
		defer f.endMu.Unlock()
		return &ending{at: lc.Since(), ended: probes.EndedStopped, cause: cmp.Or(f.drain, "stopped")}
	case probes.Broken:
		return &ending{at: lc.Since(), ended: probes.EndedBroken, cause: "broken"}
	default:
		return &ending{at: lc.Clock().Now(), ended: probes.EndedClosed, cause: "history closed while " + p.String()}
	}
}

// flush writes what was recorded since the last flush: the transitions,
// the end once known, and the quarter hours that have closed; with final,
// the end in any case and the quarter hours still open. It syncs the files
// it wrote.
func (f *files) flush(final bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shut {
		return
	}
	h := f.h
	h.mu.Lock()
	added := h.added.Load()
	n := int(min(added-f.copied.Load(), uint64(len(h.ring))))
	f.batch = f.batch[:0]
	for i := n; i > 0; i-- {
		f.batch = append(f.batch, h.ring[(h.next-i+len(h.ring))%len(h.ring)])
	}
	h.mu.Unlock()
	f.copied.Store(added)

	buf, ends := f.buf[:0], f.ends[:0]
	for i := range f.batch {
		buf = appendTransition(buf, f.number, &f.batch[i])
		ends = append(ends, len(buf))
	}
	f.endMu.Lock()
	e := f.end
	f.endMu.Unlock()
	if e == nil && final {
		e = f.closed()
	}
	wrote := f.wroteEnd
	if e != nil && (wrote == nil || *wrote != *e) {
		f.wroteEnd = e // carried, should the append begin a segment
		buf = appendEnd(buf, f.number, *e)
		ends = append(ends, len(buf))
	}
	var errs []error
	if len(ends) > 0 {
		if _, err := f.events.append(buf, ends, f.carry); err != nil {
			f.wroteEnd = wrote // the end is tried again; the transitions are dropped
			errs = append(errs, err)
		}
	}
	buf, ends = f.closedQuarters(buf[:0], ends[:0], final)
	if len(ends) > 0 {
		if _, err := f.rollups.append(buf, ends, nil); err != nil {
			errs = append(errs, err)
		}
	}
	f.buf, f.ends = buf, ends
	if !f.nosync {
		errs = append(errs, f.events.sync(), f.rollups.sync())
	}
	f.err = errors.Join(errs...)
}

// closedQuarters appends a record of every quarter hour of every check
// that has closed since it was last written; with final, of the present
// one too.
func (f *files) closedQuarters(buf []byte, ends []int, final bool) ([]byte, []int) {
	present := f.h.lc.Clock().Now().UnixNano() / int64(15*time.Minute)
	for k, sr := range *f.h.series.Load() {
		last, known := f.quarters[k]
		f.slots = f.slots[:0]
		sr.mu.Lock()
		for i := range sr.quarters {
			sl := &sr.quarters[i]
			if sl.counts == [3]uint32{} || sl.epoch > present {
				continue
			}
			if sl.epoch < present && (!known || sl.epoch > last) || final && sl.epoch == present {
				f.slots = append(f.slots, *sl)
			}
		}
		sr.mu.Unlock()
		slices.SortFunc(f.slots, func(a, b slot) int { return cmp.Compare(a.epoch, b.epoch) })
		for i := range f.slots {
			buf = appendRollup(buf, f.number, &rollup{gate: k.gate, check: k.check, slot: f.slots[i]})
			ends = append(ends, len(buf))
			if e := f.slots[i].epoch; e < present {
				f.quarters[k] = e
			}
		}
	}
	return buf, ends
}

// close writes what is left and the end, and closes the files.
func (f *files) close() {
	f.endMu.Lock()
	if f.closing {
		f.endMu.Unlock()
		return
	}
	f.closing = true
	f.endMu.Unlock()
	close(f.done)
	f.late.Wait()
	f.flush(true)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeFiles()
}

// abandon closes the files without writing anything more, as a process
// killed outright leaves them; for tests.
func (f *files) abandon() {
	f.endMu.Lock()
	f.closing = true
	f.endMu.Unlock()
	close(f.done)
	f.late.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeFiles()
}

// closeFiles closes every file, the lock's last; f.mu must be held once
// the writer may run.
func (f *files) closeFiles() {
	f.shut = true
	for _, l := range []*segLog{f.events, f.rollups} {
		if l != nil {
			l.close()
		}
	}
	f.lockf.Close()
}

// segLog is one log: two segment files, written in turn.
type segLog struct {
	id    byte
	f     [2]*os.File
	cur   int    // the segment appended to
	gen   uint64 // its generation
	size  int64  // its length
	dirty [2]bool
}

// openLog opens (creating them) the two segments of a log, name.0 and
// name.1, and returns what they hold, at most two segments' worth each.
func openLog(dir, name string, id byte) (*segLog, [2][]byte, error) {
	l := &segLog{id: id}
	var data [2][]byte
	for i := range l.f {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s.%d", name, i)), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			l.close()
			return nil, data, fmt.Errorf("not writable: %w", err)
		}
		l.f[i] = f
		if data[i], err = io.ReadAll(io.LimitReader(f, 2*segmentSize)); err != nil {
			l.close()
			return nil, data, err
		}
	}
	return l, data, nil
}

// resume makes the newer readable segment the one appended to, cut to its
// whole records, or begins afresh when neither is readable.
func (l *segLog) resume(info [2]segmentInfo) error {
	cur := 0
	if info[1].gen > info[0].gen {
		cur = 1
	}
	if info[cur].gen == 0 {
		return l.begin(0, 1, nil)
	}
	// A torn tail goes before anything is appended after it.
	if err := l.f[cur].Truncate(int64(info[cur].valid)); err != nil {
		return err
	}
	l.cur, l.gen, l.size = cur, info[cur].gen, int64(info[cur].valid)
	return nil
}

// begin empties segment i and heads it with generation gen, then carry.
func (l *segLog) begin(i int, gen uint64, carry []byte) error {
	head := append(appendHeader(nil, l.id, gen), carry...)
	if err := l.f[i].Truncate(0); err != nil {
		return err
	}
	if _, err := l.f[i].WriteAt(head, 0); err != nil {
		return err
	}
	l.cur, l.gen, l.size, l.dirty[i] = i, gen, int64(len(head)), true
	return nil
}

// append writes the records of buf (each ending at the next of ends) after
// the current segment's, beginning the other segment, headed with what
// carry appends (nil: nothing), when the next ones do not fit. It reports
// whether it began one.
func (l *segLog) append(buf []byte, ends []int, carry func([]byte) []byte) (began bool, err error) {
	start, from := 0, 0
	fresh := false
	for from < len(ends) {
		to := from
		for to < len(ends) && l.size+int64(ends[to]-start) <= segmentSize {
			to++
		}
		if to == from {
			if fresh { // larger than a whole segment: cannot be, and left out
				start, from, fresh = ends[from], from+1, false
				continue
			}
			var head []byte
			if carry != nil {
				head = carry(nil)
			}
			if err := l.begin(1-l.cur, l.gen+1, head); err != nil {
				return began, err
			}
			began, fresh = true, true
			continue
		}
		chunk := buf[start:ends[to-1]]
		if _, err := l.f[l.cur].WriteAt(chunk, l.size); err != nil {
			return began, err
		}
		l.size += int64(len(chunk))
		l.dirty[l.cur] = true
		start, from, fresh = ends[to-1], to, false
	}
	return began, nil
}

// sync syncs the segments written since the last sync.
func (l *segLog) sync() error {
	var errs []error
	for i, d := range l.dirty {
		if d {
			errs = append(errs, l.f[i].Sync())
			l.dirty[i] = false
		}
	}
	return errors.Join(errs...)
}

func (l *segLog) close() {
	for _, f := range l.f {
		if f != nil {
			f.Close()
		}
	}
}
