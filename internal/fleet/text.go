package fleet

// The text form: the faults, then one row per instance.

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// writeText writes r for a person. Every text in it that came from an
// instance was cleaned when it was read (see clean).
func writeText(w io.Writer, r *Round) error {
	var b strings.Builder
	if r.Error != "" {
		fmt.Fprintf(&b, "discovery: %s (showing the instances found before)\n", r.Error)
	}
	for _, w := range r.Warnings {
		fmt.Fprintln(&b, w)
	}
	if r.Error != "" || len(r.Warnings) > 0 {
		b.WriteByte('\n')
	}
	if len(r.Faults) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, f := range r.Faults {
			fmt.Fprintf(tw, "%s\t%s\tfailing on %d of %d\n", f.Check, f.Scope, f.Failing, f.Of)
		}
		tw.Flush()
		if r.MoreFaults > 0 {
			fmt.Fprintf(&b, "and %d more failing checks, %d of them fleet-wide\n", r.MoreFaults, r.MoreFleetWide)
		}
		b.WriteByte('\n')
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tPHASE\tREADY\tCORDON\tFAILING\tSINCE\tRESTARTS")
	var ready, cordoned int
	for i := range r.Instances {
		in := &r.Instances[i]
		if !in.Reachable {
			fmt.Fprintf(tw, "%s\tunreachable\t-\t-\t%s\t-\t-\n", in.Address, in.Error)
			continue
		}
		if in.Ready {
			ready++
		}
		if in.Cordon != "" {
			cordoned++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Address, dash(in.Phase), readyText(in), dash(cordonCell(in)),
			dash(failingCell(in)), dash(age(r.At, in.Since)), restartsCell(in))
	}
	tw.Flush()
	noun := "instances"
	if len(r.Instances) == 1 {
		noun = "instance"
	}
	fmt.Fprintf(&b, "\n%d %s: %d reachable, %d ready, %d cordoned; asked in %s\n",
		len(r.Instances), noun, r.Reachable, ready, cordoned, (time.Duration(r.Took*1000) * time.Microsecond).Round(time.Millisecond))
	_, err := io.WriteString(w, b.String())
	return err
}

// cordonCell is the cordon's reason and who set it, without their command
// line, which the JSON form and the page have: "disk swap (by uid 1000
// (alice), pid 4242)".
func cordonCell(in *Instance) string {
	if in.Cordon == "" || in.CordonBy == "" {
		return in.Cordon
	}
	who, _, _ := strings.Cut(in.CordonBy, ": ")
	return in.Cordon + " (by " + who + ")"
}

// writeJSON writes r as one line of JSON.
func writeJSON(w io.Writer, r *Round) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// maxFailingCell bounds the failing checks named in an instance's row, in
// bytes; a row names one at least.
const maxFailingCell = 100

// failingCell names an instance's failing checks, as many as fit in
// maxFailingCell, and counts the others.
func failingCell(in *Instance) string {
	var b strings.Builder
	shown := 0
	for _, f := range in.Failing {
		if shown > 0 && b.Len()+1+len(f) > maxFailingCell {
			break
		}
		if shown > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f)
		shown++
	}
	if more := len(in.Failing) - shown + in.MoreFailing; more > 0 {
		fmt.Fprintf(&b, " and %d more", more)
	}
	return b.String()
}

// restartsCell counts an instance's restarts and says how the last
// instance ended, and why when the instance told: "2 (broken: ...)".
func restartsCell(in *Instance) string {
	if in.Restarts == 0 && in.LastEnded == "" {
		return "0"
	}
	last := in.LastEnded
	if in.LastCause != "" {
		last += ": " + in.LastCause
	}
	if last == "" {
		return fmt.Sprint(in.Restarts)
	}
	return fmt.Sprintf("%d (%s)", in.Restarts, last)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func readyText(in *Instance) string {
	switch {
	case !in.Ready:
		return "no"
	case in.Readiness == "warn":
		return "yes (warn)"
	}
	return "yes"
}

// age says how long before now an RFC 3339 time was, at a person's
// precision; a time that does not parse is shown as it is.
func age(now time.Time, since string) string {
	if since == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339Nano, since)
	if err != nil {
		return since
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
