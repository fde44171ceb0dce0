package history

// The state directory's format. Two logs, events (the instances and their
// transitions) and rollups (the quarter hours of every check), each kept
// in two segment files of at most segmentSize bytes written in turn: when
// the next records do not fit in one, the other is emptied and written
// from its start, so that the oldest records go first and the files never
// grow. A segment begins with a header (the log, and a generation that
// grows with every segment begun); the newer segment is the one with the
// higher generation. Every record is framed as its payload's length and a
// CRC-32C of the length and the payload, then the payload: a segment is
// read up to its first record that is torn (cut anywhere) or corrupt, and
// what follows is dropped.

import (
	"encoding/binary"
	"hash/crc32"
	"time"
	"unicode/utf8"

	"github.com/probekit/probes"
)

const (
	// segmentSize bounds one segment file: four of them (two logs of two
	// segments) make the 256 KiB the state directory holds at most.
	segmentSize = 64 << 10
	// maxRecord bounds a record's payload; a frame claiming more is corrupt.
	maxRecord = 4 << 10
	frameSize = 8 // the length and the checksum

	// Cuts of the texts written, in bytes.
	maxName   = 253 // an identity's field, as probes.Identify cuts it
	maxField  = 256 // a subject, a from or a to, a check's name
	maxReason = 512 // a transition's reason, an end's cause
)

// formatMagic opens every segment's header: a file of another program, or
// of another version of this format, is never read as records.
const formatMagic = "probes-history/1"

// The logs, as their headers name them.
const (
	logEvents  byte = 'e'
	logRollups byte = 'r'
)

// Record kinds.
const (
	kindHeader     byte = 1 + iota // formatMagic, the log, the generation
	kindStart                      // an instance began
	kindEnd                        // an instance ended, and why
	kindTransition                 // one transition of an instance
	kindPrevious                   // an earlier instance, carried to the head of each events segment
	kindRollup                     // one quarter hour of one check of an instance
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

// begin starts a record of kind at the end of b; finish frames it.
func begin(b []byte, kind byte) ([]byte, int) {
	start := len(b)
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0, kind), start
}

// finish frames the record begun at start, or drops it when it is larger
// than maxRecord (the cuts of its texts keep every record below it).
func finish(b []byte, start int) []byte {
	payload := b[start+frameSize:]
	if len(payload) > maxRecord {
		return b[:start]
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], checksum(b[start:start+4], payload))
	return b
}

func putU(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func putI(b []byte, v int64) []byte  { return binary.AppendVarint(b, v) }

// putS writes s cut to most bytes, on a character boundary.
func putS(b []byte, s string, most int) []byte {
	if len(s) > most {
		cut := most
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return append(putU(b, uint64(len(s))), s...)
}

// putT writes t as Unix nanoseconds; the zero time as 0.
func putT(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return putI(b, 0)
	}
	return putI(b, t.UnixNano())
}

// fields reads a record's payload. A read past its end, or a value that
// cannot be, marks it bad and reads zero from then on.
type fields struct {
	b   []byte
	bad bool
}

func (r *fields) u() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *fields) i() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *fields) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fields) s(most int) string {
	n := r.u()
	if r.bad || n > uint64(most) || n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *fields) t() time.Time {
	if v := r.i(); v != 0 {
		return time.Unix(0, v)
	}
	return time.Time{}
}

// scan calls fn with the payload of each record of seg in order, up to the
// first that is torn or corrupt, and returns the length of the part of seg
// that holds whole records.
func scan(seg []byte, fn func(payload []byte)) int {
	off := 0
	for len(seg)-off >= frameSize {
		n := int(binary.LittleEndian.Uint32(seg[off:]))
		if n == 0 || n > maxRecord || n > len(seg)-off-frameSize {
			break
		}
		payload := seg[off+frameSize : off+frameSize+n]
		if checksum(seg[off:off+4], payload) != binary.LittleEndian.Uint32(seg[off+4:]) {
			break
		}
		fn(payload)
		off += frameSize + n
	}
	return off
}

func appendHeader(b []byte, log byte, gen uint64) []byte {
	b, at := begin(b, kindHeader)
	b = putS(b, formatMagic, len(formatMagic))
	b = append(b, log)
	b = putU(b, gen)
	return finish(b, at)
}

// header reads a segment's header: its generation, 0 when seg does not
// begin with a header of log.
func header(payload []byte, log byte) uint64 {
	r := fields{b: payload}
	if r.byte() != kindHeader || r.s(len(formatMagic)) != formatMagic || r.byte() != log {
		return 0
	}
	gen := r.u()
	if r.bad {
		return 0
	}
	return gen
}

// segmentInfo is what reading a segment found: its generation (0: not a
// segment of the log) and the length of its whole records.
type segmentInfo struct {
	gen   uint64
	valid int
}

// readLog reads the two segments of log and calls fn with every record
// after their headers, the older segment's first.
func readLog(log byte, segs [2][]byte, fn func(payload []byte)) [2]segmentInfo {
	var info [2]segmentInfo
	for i, seg := range segs {
		first := true
		valid := scan(seg, func(p []byte) {
			if first {
				info[i].gen = header(p, log)
				first = false
			}
		})
		if info[i].gen != 0 {
			info[i].valid = valid
		}
	}
	order := [2]int{0, 1}
	if info[0].gen > info[1].gen {
		order = [2]int{1, 0}
	}
	for _, i := range order {
		if info[i].gen == 0 {
			continue
		}
		first := true
		scan(segs[i][:info[i].valid], func(p []byte) {
			if first {
				first = false
				return
			}
			fn(p)
		})
	}
	return info
}

// ending is how an instance ended.
type ending struct {
	at    time.Time
	ended string // probes.EndedStopped, ...
	cause string
}

func appendStart(b []byte, number uint64, start time.Time, id probes.Identity) []byte {
	b, at := begin(b, kindStart)
	b = putU(b, number)
	b = putT(b, start)
	b = appendIdentity(b, id)
	return finish(b, at)
}

func appendIdentity(b []byte, id probes.Identity) []byte {
	for _, s := range []string{id.Service, id.Release, id.Instance, id.Node} {
		b = putS(b, s, maxName)
	}
	return b
}

func (r *fields) identity() probes.Identity {
	return probes.Identity{Service: r.s(maxName), Release: r.s(maxName), Instance: r.s(maxName), Node: r.s(maxName)}
}

func appendEnd(b []byte, number uint64, e ending) []byte {
	b, at := begin(b, kindEnd)
	b = putU(b, number)
	b = putT(b, e.at)
	b = putS(b, e.ended, maxField)
	b = putS(b, e.cause, maxReason)
	return finish(b, at)
}

func appendTransition(b []byte, number uint64, t *Transition) []byte {
	b, at := begin(b, kindTransition)
	b = putU(b, number)
	b = putT(b, t.At)
	b = putS(b, t.Subject, maxField)
	b = putS(b, t.From, maxField)
	b = putS(b, t.To, maxField)
	b = putS(b, t.Reason, maxReason)
	if t.By != "" { // last and optional: records written before it end here
		b = putS(b, t.By, maxReason)
	}
	return finish(b, at)
}

// appendPrevious carries what is known of an earlier instance (but its
// transitions) to the head of a new segment.
func appendPrevious(b []byte, in *Instance) []byte {
	b, at := begin(b, kindPrevious)
	b = putU(b, uint64(in.Number))
	b = putT(b, in.Start)
	b = appendIdentity(b, in.Identity)
	b = putT(b, in.End)
	b = putS(b, in.Ended, maxField)
	b = putS(b, in.Cause, maxReason)
	b = putT(b, in.Seen)
	return finish(b, at)
}

// rollup is one quarter hour of one check, as a record holds it.
type rollup struct {
	gate  probes.Kind
	check string
	slot  slot
}

func appendRollup(b []byte, number uint64, r *rollup) []byte {
	b, at := begin(b, kindRollup)
	b = putU(b, number)
	b = append(b, byte(r.gate))
	b = putS(b, r.check, maxField)
	b = putI(b, r.slot.epoch)
	for _, c := range r.slot.counts {
		b = putU(b, uint64(c))
	}
	for _, c := range r.slot.lat {
		b = putU(b, uint64(c))
	}
	b = putI(b, int64(r.slot.max))
	return finish(b, at)
}

// u32 reads a count.
func (r *fields) u32() uint32 {
	v := r.u()
	if v > 1<<32-1 {
		r.bad = true
	}
	return uint32(v)
}
