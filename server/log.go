package server

import (
	"sync"

	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/redact"
)

// The zap logging of transitions and verdict changes, which Server.Run sets
// up when the Logger option is given.

func logTransition(log *zap.Logger, t probes.Transition) {
	fields := []zap.Field{
		zap.Stringer("from", t.From), zap.Stringer("to", t.To),
		zap.String("reason", redact.String(t.Reason)), zap.Time("at", t.At),
	}
	if t.To == probes.Broken {
		log.Error("phase changed", append(fields, zap.Error(redact.Error(t.Err)))...)
		return
	}
	log.Info("phase changed", fields...)
}

// logCordon logs a cordon that lifted by itself at its time limit. A
// cordon set or lifted by hand is logged once, by whoever did it: only the
// caller knows who asked (package admin logs the peer, its uid and pid).
func logCordon(log *zap.Logger, c probes.CordonChange) {
	if c.Cause != probes.CauseLifted {
		return
	}
	log.Info("cordon lifted at its time limit: back in rotation unless the phase or a check says otherwise",
		zap.String("reason", c.Was.Reason), zap.Time("until", c.Was.Until), zap.Duration("cordoned_for", c.At.Sub(c.Was.Since)))
}

// changes hears what watchChanges tells: every move, every cordon change,
// and every change of a gate's report with the report before it. The log
// and the termination message are its two.
type changes interface {
	moved(t probes.Transition)
	cordonChanged(c probes.CordonChange)
	reportChanged(prev, cur *probes.Report)
}

// logSink logs what it hears.
type logSink struct{ log *zap.Logger }

func (l logSink) moved(t probes.Transition)              { logTransition(l.log, t) }
func (l logSink) cordonChanged(c probes.CordonChange)    { logCordon(l.log, c) }
func (l logSink) reportChanged(prev, cur *probes.Report) { logDiff(l.log, prev, cur) }

// watchChanges returns a watcher (probes.Lifecycle.Watch) that tells each
// of to every move, cordon change, and change of a gate's verdict, a
// check's verdict or a warm-up task's state, comparing each gate's report
// with the one before, once for all of them; a gate built later is told
// from its first change on.
func watchChanges(lc *probes.Lifecycle, to ...changes) func(probes.Change) {
	var mu sync.Mutex
	prev := map[probes.Kind]probes.Report{}
	for _, g := range lc.Gates() {
		prev[g.Kind()] = g.Report()
	}
	return func(c probes.Change) {
		switch c.Kind {
		case probes.Moved:
			for _, t := range to {
				t.moved(c.Move)
			}
		case probes.CordonChanged:
			for _, t := range to {
				t.cordonChanged(c.Cordon)
			}
		case probes.VerdictChanged:
			g := lc.Gate(c.Gate)
			if g == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			cur := g.Report()
			if was, ok := prev[c.Gate]; ok {
				for _, t := range to {
					t.reportChanged(&was, &cur)
				}
			}
			prev[c.Gate] = cur
		}
	}
}

func logDiff(log *zap.Logger, prev, cur *probes.Report) {
	gate := zap.Stringer("gate", cur.Gate)
	if a, b := prev.Status(), cur.Status(); a != b {
		failing, warning := cur.Behind(nil)
		log.Info("gate verdict changed", gate, zap.Stringer("from", a), zap.Stringer("to", b),
			zap.Strings("failing", failing), zap.Strings("warning", warning), zap.Strings("notes", cur.Notes))
	}
	for _, c := range cur.Checks {
		old, ok := prev.Check(c.Name)
		if ok && old.Flapping != c.Flapping {
			if c.Flapping {
				log.Warn("check flapping: its outcomes keep changing", gate, zap.String("check", c.Name), zap.Stringer("status", c.Status))
			} else {
				log.Info("check no longer flapping", gate, zap.String("check", c.Name), zap.Stringer("status", c.Status))
			}
		}
		if c.Time.IsZero() {
			continue // no result yet
		}
		// A check stands for a verdict before its first result (a
		// self-check passes, a readiness check fails). A first result is
		// logged when it differs from that, or is not passing (its reason
		// is news), and without a "from": there was no result before it. A
		// later result is logged when its verdict changed, from the last.
		changed := ok && !old.Time.IsZero() && old.Status != c.Status
		first := (!ok || old.Time.IsZero()) && (c.Status != probes.Pass || ok && old.Status != c.Status)
		if !changed && !first {
			continue
		}
		fields := []zap.Field{gate, zap.String("check", c.Name), zap.Stringer("to", c.Status),
			zap.Duration("duration", c.Duration), zap.Int("consecutive_failures", c.ConsecutiveFailures)}
		if changed {
			fields = append(fields, zap.Stringer("from", old.Status))
		}
		if c.Err != nil {
			fields = append(fields, zap.Error(c.Err))
		}
		if c.Status == probes.Pass {
			log.Info("check verdict changed", fields...)
		} else {
			log.Warn("check verdict changed", fields...)
		}
	}
	for _, t := range cur.Tasks {
		old, _ := prev.Task(t.Name)
		switch {
		case t.Done && !old.Done:
			log.Info("warm-up task done", gate, zap.String("task", t.Name), zap.Int("attempts", t.Attempts))
		case t.Failures != old.Failures:
			log.Warn("warm-up task attempt failed", gate, zap.String("task", t.Name), zap.Int("failures", t.Failures), zap.Error(t.Err))
		case int(t.Fraction*10) != int(old.Fraction*10):
			log.Info("warm-up progress", gate, zap.String("task", t.Name), zap.Int("percent", int(t.Fraction*100)))
		}
	}
}
