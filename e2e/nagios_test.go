//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// nagiosService is a service's state as Nagios's status file says it.
type nagiosService struct {
	checked bool
	state   string // current_state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
	output  string // plugin_output
	perf    string // performance_data
}

// TestNagiosScheduler runs `probe -format nagios` under the real Nagios
// scheduler against the example service with a shared PostgreSQL, as two
// services: its readiness and its deep view. CRITICAL while it warms up;
// OK once ready, with its response times as performance data; with the
// database stopped, WARNING for readiness (a shared dependency keeps the
// instance in rotation) and CRITICAL for the deep view; UNKNOWN once
// nothing answers: each as Nagios's own status file records it.
func TestNagiosScheduler(t *testing.T) {
	need(t, "nagios4")
	example := buildExample(t)
	// Nagios runs its checks as its own user: everything it reads and
	// writes lives in a directory it may use.
	dir, err := os.MkdirTemp("", "nagios-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{dir, filepath.Join(dir, "checkresults")} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	probe := filepath.Join(dir, "probe")
	build := exec.Command("go", "build", "-o", probe, "./cmd/probe")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build probe: %v\n%s", err, out)
	}
	if err := os.Chmod(probe, 0o755); err != nil {
		t.Fatal(err)
	}

	addr, probeAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cfg := filepath.Join(dir, "nagios.cfg")
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(text, "DIR", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nagios.cfg", `log_file=DIR/nagios.log
cfg_file=DIR/objects.cfg
object_cache_file=DIR/objects.cache
precached_object_file=DIR/objects.precache
status_file=DIR/status.dat
status_update_interval=1
temp_file=DIR/nagios.tmp
temp_path=DIR
lock_file=DIR/nagios.lock
check_result_path=DIR/checkresults
check_result_reaper_frequency=1
interval_length=1
nagios_user=nagios
nagios_group=nagios
command_file=DIR/nagios.cmd
check_external_commands=0
enable_notifications=0
enable_flap_detection=0
retain_state_information=0
illegal_macro_output_chars=`+"`"+`~$&|'"<>
`)
	write("objects.cfg", fmt.Sprintf(`define timeperiod {
  timeperiod_name always
  alias always
  sunday 00:00-24:00
  monday 00:00-24:00
  tuesday 00:00-24:00
  wednesday 00:00-24:00
  thursday 00:00-24:00
  friday 00:00-24:00
  saturday 00:00-24:00
}
define command {
  command_name check_probes
  command_line %s -format nagios -timeout 2s $ARG1$
}
define contact {
  contact_name nobody
  host_notifications_enabled 0
  service_notifications_enabled 0
  host_notification_period always
  service_notification_period always
  host_notification_options n
  service_notification_options n
  host_notification_commands check_probes
  service_notification_commands check_probes
}
define host {
  host_name app
  address 127.0.0.1
  check_command check_probes!http://%[2]s/livez
  max_check_attempts 1
  check_interval 1
  retry_interval 1
  check_period always
  notification_period always
  contacts nobody
}
`, probe, probeAddr)+services(probeAddr, map[string]string{"readiness": "/readyz?verbose", "deep": "/healthz?verbose"}))
	if out, err := exec.Command("nagios4", "-v", cfg).CombinedOutput(); err != nil {
		t.Fatalf("nagios4 -v: %v\n%s", err, out)
	}

	// The service first, warming up for long enough that Nagios sees it.
	pg := pgtest.Start(t)
	svc := exec.Command(example, "-addr", addr, "-probe-addr", probeAddr, "-grpc-addr=", "-warmup", "6s", "-drain", "0s")
	svc.Env = append(os.Environ(), "DATABASE_URL="+pg.URL("pw"), "DB_SCOPE=shared")
	svc.Stdout, svc.Stderr = nil, nil
	startOwned(t, svc)
	nagios := exec.Command("nagios4", cfg)
	startOwned(t, nagios)

	read := func() map[string]nagiosService {
		f, err := os.Open(filepath.Join(dir, "status.dat"))
		if err != nil {
			return nil
		}
		defer f.Close()
		out := map[string]nagiosService{}
		var s nagiosService
		var desc string
		in := false
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "servicestatus {":
				in, s, desc = true, nagiosService{}, ""
			case line == "}" && in:
				in = false
				out[desc] = s
			case in:
				k, v, _ := strings.Cut(line, "=")
				switch k {
				case "service_description":
					desc = v
				case "has_been_checked":
					s.checked = v == "1"
				case "current_state":
					s.state = v
				case "plugin_output":
					s.output = v
				case "performance_data":
					s.perf = v
				}
			}
		}
		return out
	}
	wait := func(what, service, state, output string) nagiosService {
		t.Helper()
		var last nagiosService
		testutil.Eventually(t, what, func() bool {
			last = read()[service]
			return last.checked && last.state == state && strings.Contains(last.output, output)
		})
		return last
	}
	warming := wait("readiness CRITICAL while warming", "readiness", "2", "PROBES CRITICAL")
	if !strings.Contains(warming.output, "warming") {
		t.Errorf("while warming: %q, want it to say warming", warming.output)
	}
	ready := wait("readiness OK once ready", "readiness", "0", "PROBES OK - probes-example")
	if !strings.Contains(ready.perf, "'time'=") || !strings.Contains(ready.perf, "'dns:responseTime'=") {
		t.Errorf("performance data %q: want the request's time and the checks' response times", ready.perf)
	}
	wait("the deep view OK once ready", "deep", "0", "PROBES OK")
	t.Logf("Nagios: readiness %s, %q | %q", ready.state, ready.output, ready.perf)

	pg.Stop()
	warn := wait("readiness WARNING with the shared database down", "readiness", "1", "postgres")
	deep := wait("the deep view CRITICAL with the database down", "deep", "2", "postgres")
	t.Logf("Nagios: readiness %s, %q; deep view %s, %q", warn.state, warn.output, deep.state, deep.output)

	if err := svc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone := wait("UNKNOWN once nothing answers", "readiness", "3", "no answer")
	t.Logf("Nagios: state %s, %q", gone.state, gone.output)
}

// services writes a Nagios service of the host app for each name, checking
// its path on probeAddr every second.
func services(probeAddr string, paths map[string]string) string {
	var b strings.Builder
	for name, path := range paths {
		fmt.Fprintf(&b, `define service {
  host_name app
  service_description %s
  check_command check_probes!http://%s%s
  max_check_attempts 1
  check_interval 1
  retry_interval 1
  check_period always
  notification_period always
  contacts nobody
}
`, name, probeAddr, path)
	}
	return b.String()
}
