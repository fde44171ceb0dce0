package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/probekit/probes"
)

// Info describes the service in every health+json body. Empty fields are left
// out.
type Info struct {
	// Version is the public version of the service's API, such as "1".
	Version string
	// ReleaseID is the version of the running build, such as "1.4.2".
	ReleaseID string
	// ServiceID identifies the service, such as "items-api".
	ServiceID string
	// Description is a human-friendly description of the service.
	Description string
}

// body is the health+json document (draft-inadarei-api-health-check-06).
type body struct {
	Status      string             `json:"status"`
	Version     string             `json:"version,omitempty"`
	ReleaseID   string             `json:"releaseId,omitempty"`
	ServiceID   string             `json:"serviceId,omitempty"`
	Description string             `json:"description,omitempty"`
	Notes       []string           `json:"notes,omitempty"`
	Output      string             `json:"output,omitempty"`
	Checks      map[string][]entry `json:"checks,omitempty"`
}

type entry struct {
	ComponentType string  `json:"componentType,omitempty"`
	ObservedValue float64 `json:"observedValue"`
	ObservedUnit  string  `json:"observedUnit,omitempty"`
	Status        string  `json:"status"`
	Time          string  `json:"time,omitempty"`
	Output        string  `json:"output,omitempty"`
}

// renderOptions say what one rendering includes.
type renderOptions struct {
	verbose   bool
	authz     bool                   // error texts may be shown
	skip      func(name string) bool // ?exclude=
	unmatched []string               // excluded names that match nothing
}

func (o *renderOptions) status(rep *probes.Report) probes.Status {
	return rep.StatusExcluding(o.skip)
}

func (o *renderOptions) excluded(name string) bool { return o.skip != nil && o.skip(name) }

func unmatchedNote(name string) string {
	return fmt.Sprintf("warn: some health checks cannot be excluded: no matches for %q", name)
}

func renderJSON(info *Info, rep *probes.Report, o renderOptions) []byte {
	b := body{
		Status:      o.status(rep).String(),
		Version:     info.Version,
		ReleaseID:   info.ReleaseID,
		ServiceID:   info.ServiceID,
		Description: info.Description,
		Notes:       rep.Notes,
	}
	if len(o.unmatched) > 0 {
		b.Notes = b.Notes[:len(b.Notes):len(b.Notes)] // append to a copy
		for _, name := range o.unmatched {
			b.Notes = append(b.Notes, unmatchedNote(name))
		}
	}
	if o.verbose {
		b.Checks = make(map[string][]entry, len(rep.Checks)+len(rep.Tasks))
		for i := range rep.Checks {
			c := &rep.Checks[i]
			if o.excluded(c.Name) {
				continue
			}
			e := checkEntry(c, o.authz)
			b.Checks[c.Name+":responseTime"] = []entry{e}
			for _, ob := range c.Observations {
				e.ObservedValue, e.ObservedUnit = ob.Value, ob.Unit
				b.Checks[c.Name+":"+ob.Measurement] = []entry{e}
			}
		}
		for i := range rep.Tasks {
			t := &rep.Tasks[i]
			b.Checks[t.Name+":progress"] = []entry{taskEntry(t, o.authz)}
		}
	}
	return marshal(&b)
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only plain strings, numbers and maps go in; this cannot happen.
		panic("server: encoding health+json: " + err.Error())
	}
	return buf.Bytes()
}

func checkEntry(c *probes.Result, authz bool) entry {
	e := entry{
		ComponentType: c.ComponentType,
		ObservedValue: float64(c.Duration.Microseconds()) / 1000,
		ObservedUnit:  "ms",
		Status:        c.Status.String(),
	}
	if !c.Time.IsZero() {
		e.Time = c.Time.UTC().Format(time.RFC3339Nano)
	}
	if authz && c.Err != nil {
		e.Output = c.Err.Error()
	}
	return e
}

// taskStatus is pass for a finished task and fail for one still loading, as
// the text form's [+] and [-] say.
func taskStatus(t *probes.TaskState) probes.Status {
	if t.Done {
		return probes.Pass
	}
	return probes.Fail
}

func taskEntry(t *probes.TaskState, authz bool) entry {
	e := entry{
		ComponentType: "component",
		ObservedValue: float64(int(t.Fraction*1000)) / 10,
		ObservedUnit:  "%",
		Status:        taskStatus(t).String(),
	}
	if authz && t.Err != nil {
		e.Output = t.Err.Error()
	}
	return e
}

// renderText writes the Kubernetes text form: "ok" for a passing gate
// without ?verbose, else a line per check and a closing verdict line.
func renderText(rep *probes.Report, path string, o renderOptions) []byte {
	st := o.status(rep)
	if !o.verbose && st.OK() && len(o.unmatched) == 0 {
		return []byte("ok\n")
	}
	var b bytes.Buffer
	for _, name := range o.unmatched {
		b.WriteString(unmatchedNote(name) + "\n")
	}
	if rep.Base.OK() {
		fmt.Fprintf(&b, "[+]phase ok: %s\n", rep.Phase)
	} else {
		fmt.Fprintf(&b, "[-]phase failed: %s\n", rep.Phase)
	}
	for i := range rep.Checks {
		c := &rep.Checks[i]
		if o.excluded(c.Name) {
			fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.Name)
			continue
		}
		textLine(&b, c.Name, c.Status, c.Err, o.authz)
	}
	for i := range rep.Tasks {
		t := &rep.Tasks[i]
		if t.Done {
			fmt.Fprintf(&b, "[+]%s done\n", t.Name)
		} else {
			fmt.Fprintf(&b, "[-]%s %d%%\n", t.Name, int(t.Fraction*100))
		}
	}
	if st.OK() {
		fmt.Fprintf(&b, "%s check passed\n", path)
	} else {
		fmt.Fprintf(&b, "%s check failed\n", path)
	}
	return b.Bytes()
}

func textLine(b *bytes.Buffer, name string, s probes.Status, err error, authz bool) {
	switch s {
	case probes.Pass:
		fmt.Fprintf(b, "[+]%s ok\n", name)
	case probes.Warn:
		fmt.Fprintf(b, "[+]%s warn: %s\n", name, reason(err, authz))
	default:
		fmt.Fprintf(b, "[-]%s failed: %s\n", name, reason(err, authz))
	}
}

func reason(err error, authz bool) string {
	switch {
	case err == nil:
		return "no reason given"
	case !authz:
		return "reason withheld"
	}
	return err.Error()
}

func contentLength(b []byte) []string { return []string{strconv.Itoa(len(b))} }
