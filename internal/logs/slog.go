// Package logs lets the library's packages, which log through zap, write
// to a service's log/slog logger instead (every line keeps its level, its
// message and its fields as slog attributes), and name the service and
// instance on every line.
package logs

import (
	"context"
	"log/slog"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/probekit/probes"
)

// FromSlog returns a zap logger that writes through l's handler; a nil l
// gives a no-op logger.
func FromSlog(l *slog.Logger) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return zap.New(&core{h: l.Handler()})
}

// core is a zapcore.Core over a slog.Handler.
type core struct {
	h slog.Handler
}

// level maps zap's levels onto slog's; DPanic, Panic and Fatal log as
// errors (zap itself panics or exits after writing them).
func level(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (c *core) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), level(l))
}

func (c *core) With(fs []zapcore.Field) zapcore.Core {
	if len(fs) == 0 {
		return c
	}
	return &core{h: c.h.WithAttrs(attrs(fs))}
}

func (c *core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *core) Write(e zapcore.Entry, fs []zapcore.Field) error {
	r := slog.NewRecord(e.Time, level(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(attrs(fs)...)
	return c.h.Handle(context.Background(), r)
}

func (c *core) Sync() error { return nil }

// attrs turns zap fields into slog attributes, in their order; a field
// that encodes as an object (zap.Dict, zap.Object) becomes a group.
func attrs(fs []zapcore.Field) []slog.Attr {
	out := make([]slog.Attr, 0, len(fs))
	for _, f := range fs {
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		keys := make([]string, 0, len(enc.Fields))
		for k := range enc.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys) // one key but for inline objects: a stable order
		for _, k := range keys {
			out = append(out, attr(k, enc.Fields[k]))
		}
	}
	return out
}

func attr(k string, v any) slog.Attr {
	if m, ok := v.(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		group := make([]any, 0, len(m))
		for _, gk := range keys {
			group = append(group, attr(gk, m[gk]))
		}
		return slog.Group(k, group...)
	}
	return slog.Any(k, v)
}

// Identified returns l with the fields of id that are set (service,
// release, instance, node), so that every line the library writes says
// which service and instance wrote it.
func Identified(l *zap.Logger, id probes.Identity) *zap.Logger {
	var fs []zap.Field
	for _, f := range []struct{ k, v string }{{"service", id.Service}, {"release", id.Release}, {"instance", id.Instance}, {"node", id.Node}} {
		if f.v != "" {
			fs = append(fs, zap.String(f.k, f.v))
		}
	}
	if len(fs) == 0 {
		return l
	}
	return l.With(fs...)
}
