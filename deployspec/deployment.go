package deployspec

// A whole Kubernetes Deployment from a service's own settings.

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Deployment describes a Kubernetes Deployment of one service, which YAML
// writes whole: its ports, its three probes and its grace period computed
// from the service's settings (Compute), each number under a comment that
// says why, a rolling update that keeps every old pod until a new one is
// ready, the container's TerminationMessagePolicy, and, if asked, a
// PodDisruptionBudget that passes LintBudget.
// The pod template carries the service's stop in StopAnnotation, so that
// a linter checks the grace period against the stop the service computed,
// hooks included, rather than against what the flags say.
// With a balancer in front (Service.Balancer from AWSALB, AWSNLB or
// GoogleCloud), a Service for it follows, annotated as Plan.Annotations
// says, and for Google Cloud the BackendConfig it names.
type Deployment struct {
	// Name names the Deployment and labels its pods (app: Name). Required.
	Name string
	// Image is the container's image. Required.
	Image string
	// Command is the container's command, in place of the image's
	// entrypoint; none by default (the image's). A service run by a
	// wrapper (probe run) gives the wrapper here and its flags and the
	// service's command line in Args.
	Command []string
	// Args are the container's args; none by default. Pass the flags that
	// set what Service says, so that the file and the service agree.
	Args []string
	// Replicas is the number of pods. Default 2.
	Replicas int
	// AppAddr is the application listener's address; its port is named
	// "http". Required.
	AppAddr string
	// Service is what the timings follow from. A ProbeAddr on another port
	// than AppAddr's is the port "probes"; a GRPCAddr, the port "grpc".
	Service Service
	// GRPC makes the probes gRPC ones (grpc.health.v1) instead of HTTP.
	GRPC bool
	// MetricsPath, when not empty, adds the prometheus.io scrape
	// annotations for that path on the probes' port.
	MetricsPath string
	// Comment lines go at the top of the file, each behind "# ".
	Comment []string
	// CPU and Memory are the container's resource requests, such as "50m"
	// and "64Mi"; none when empty.
	CPU, Memory string
	// ServicePort is the port of the Service written for a balancer in
	// front (Service.Balancer: AWSALB, AWSNLB or GoogleCloud), which
	// forwards to the "http" port. Default 80.
	ServicePort int
	// StateDir, when not empty, is where the service keeps its state
	// (history.StateDir, app.Config.StateDir), an absolute path: an
	// emptyDir volume is mounted there, which lives as long as the pod and
	// so outlives the container's restarts, bounded to StateSizeLimit.
	// None by default.
	StateDir string
	// DisruptionBudget adds a policy/v1 PodDisruptionBudget for the pods,
	// after the Deployment, that lets node drains through: maxUnavailable
	// from the replicas (MaxUnavailable) and unhealthyPodEvictionPolicy
	// AlwaysAllow. Off by default.
	DisruptionBudget bool
}

// TerminationMessagePolicy is the container's terminationMessagePolicy
// that Deployment writes and probelint wants where there are probes:
// Kubernetes shows the termination message the service writes
// (server.TerminationLog), or the end of its log when it wrote none (a
// panic on a goroutine of its own, which ends the process at once),
// rather than nothing.
const TerminationMessagePolicy = "FallbackToLogsOnError"

// StateSizeLimit is the sizeLimit of the emptyDir mounted at
// Deployment.StateDir: four times what the history keeps there at most
// (history.MaxStateSize, 256 KiB), so that the kubelet never evicts the pod
// for it, while a runaway writer cannot fill the node's disk.
const StateSizeLimit = "1Mi"

// YAML returns the Deployment as a manifest. It fails when a required
// field is empty, or as Compute does when the service cannot be deployed
// safely, naming the setting to change.
func (d Deployment) YAML() (string, error) {
	switch {
	case d.Name == "":
		return "", errors.New("deployspec: Deployment.Name: need a name")
	case d.Image == "":
		return "", errors.New("deployspec: Deployment.Image: need an image")
	case d.AppAddr == "":
		return "", errors.New("deployspec: Deployment.AppAddr: need the application's address")
	}
	if d.StateDir != "" && !path.IsAbs(d.StateDir) {
		return "", fmt.Errorf("deployspec: Deployment.StateDir %q: need an absolute path in the container", d.StateDir)
	}
	appPort, err := portOf("Deployment.AppAddr", d.AppAddr)
	if err != nil {
		return "", err
	}
	for _, a := range []struct{ field, addr string }{{"Deployment.AppAddr", d.AppAddr}, {"Service.ProbeAddr", d.Service.ProbeAddr}, {"Service.GRPCAddr", d.Service.GRPCAddr}} {
		if host, port, err := net.SplitHostPort(a.addr); err == nil && loopback(host) {
			return "", fmt.Errorf("deployspec: %s %q listens on loopback, which the kubelet and the other pods cannot reach: listen on :%s (or 0.0.0.0:%s)", a.field, a.addr, port, port)
		}
	}
	p, err := Compute(d.Service, d.GRPC)
	if err != nil {
		return "", err
	}
	probePort, err := portOf("ProbeAddr", d.Service.ProbeAddr)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, c := range d.Comment {
		b.WriteString(strings.TrimRight("# "+c, " ") + "\n")
	}
	fmt.Fprintf(&b, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels:
    app: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels:
      app: %[1]s
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        app: %[1]s
      annotations:
        # what the service takes to stop, hooks included: probelint checks the grace period against it
        %[3]s: %[4]s
        # its warm-up deadline and where its probes answer: probelint checks the probes against them
        %[5]s: %[6]s
`, scalar(d.Name), cmp.Or(d.Replicas, 2), StopAnnotation, scalar(FormatStop(d.Service.Stop)), ServiceAnnotation, scalar(FormatService(d.Service)))
	if d.MetricsPath != "" {
		fmt.Fprintf(&b, `        prometheus.io/scrape: "true"
        prometheus.io/port: "%d"
        prometheus.io/path: %s
`, probePort, scalar(d.MetricsPath))
	}
	b.WriteString("    spec:\n")
	b.WriteString(p.Grace(6))
	fmt.Fprintf(&b, "      containers:\n        - name: app\n          image: %s\n", scalar(d.Image))
	if len(d.Command) > 0 {
		b.WriteString("          command:\n")
		for _, a := range d.Command {
			fmt.Fprintf(&b, "            - %s\n", scalar(a))
		}
	}
	if len(d.Args) > 0 {
		b.WriteString("          args:\n")
		for _, a := range d.Args {
			fmt.Fprintf(&b, "            - %s\n", scalar(a))
		}
	}
	b.WriteString("          ports:\n")
	fmt.Fprintf(&b, "            - name: http\n              containerPort: %d\n", appPort)
	portName := "http"
	if probePort != appPort {
		portName = "probes"
		fmt.Fprintf(&b, "            - name: probes\n              containerPort: %d\n", probePort)
	}
	if d.Service.GRPCAddr != "" {
		gp, err := portOf("GRPCAddr", d.Service.GRPCAddr)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "            - name: grpc\n              containerPort: %d\n", gp)
	}
	b.WriteString(p.Kubernetes(10, portName))
	if d.CPU != "" || d.Memory != "" {
		b.WriteString("          resources:\n            requests:\n")
		if d.CPU != "" {
			fmt.Fprintf(&b, "              cpu: %s\n", scalar(d.CPU))
		}
		if d.Memory != "" {
			fmt.Fprintf(&b, "              memory: %s\n", scalar(d.Memory))
		}
	}
	b.WriteString("          # why it stopped: the termination message the service writes as its stop begins, or the end of its log\n")
	b.WriteString("          # when it could write none (a panic on a goroutine of its own)\n")
	b.WriteString("          terminationMessagePolicy: " + TerminationMessagePolicy + "\n")
	if d.StateDir != "" {
		fmt.Fprintf(&b, `          volumeMounts:
            - name: state
              mountPath: %s
      volumes:
        - name: state
          # the service's state directory: an emptyDir lives as long as the pod, so the container after a
          # restart reads how the one before ended; the history holds at most 256 KiB there
          emptyDir:
            sizeLimit: %s
`, scalar(d.StateDir), StateSizeLimit)
	}
	if d.DisruptionBudget {
		fmt.Fprintf(&b, `---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: %[1]s
  labels:
    app: %[1]s
spec:
`, scalar(d.Name))
		w := writer{&b, "  "}
		w.number("maxUnavailable", ": ", MaxUnavailable(cmp.Or(d.Replicas, 2)))
		w.line("# a pod that is not ready serves nothing: evicting it costs no capacity, and a budget spent on")
		w.line("# unready pods (warming up, cordoned, a shared dependency down) would block every drain")
		w.line("unhealthyPodEvictionPolicy: " + AlwaysAllow)
		fmt.Fprintf(&b, "  selector:\n    matchLabels:\n      app: %s\n", scalar(d.Name))
	}
	if bal := p.Balancer; bal != nil && bal.kind != haproxyKind && bal.kind != anyKind {
		if err := d.front(&b, p); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// front writes the Service the balancer sends to, and Google Cloud's
// BackendConfig.
func (d Deployment) front(b *strings.Builder, p Plan) error {
	backendConfig := ""
	if p.Balancer.kind == googleKind {
		backendConfig = d.Name
	}
	settings, err := p.serviceSettings(backendConfig)
	if err != nil {
		return err
	}
	port := cmp.Or(d.ServicePort, 80)
	if port < 1 || port > 65535 {
		return fmt.Errorf("deployspec: Deployment.ServicePort is %d; it must be from 1 to 65535", port)
	}
	kind := "ClusterIP"
	if p.Balancer.kind == nlbKind {
		kind = "LoadBalancer"
	}
	fmt.Fprintf(b, "---\n# the Service that %s sends to\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  labels:\n    app: %s\n  annotations:\n",
		p.Balancer.name(), scalar(d.Name), scalar(d.Name))
	w := writer{b, "    "}
	for _, s := range settings {
		w.line("# " + s.why)
		w.line(s.key + ": " + strconv.Quote(s.value))
	}
	fmt.Fprintf(b, "spec:\n  type: %s\n  selector:\n    app: %s\n  ports:\n    - name: http\n      port: %d\n      targetPort: http\n", kind, scalar(d.Name), port)
	if backendConfig != "" {
		bc, err := p.BackendConfig(backendConfig)
		if err != nil {
			return err
		}
		b.WriteString("---\n" + bc)
	}
	return nil
}

// plain is what a YAML plain scalar may hold here without being read as
// anything but that string: letters, digits and _ . / : = @ + -, not
// starting with ':'.
var plain = regexp.MustCompile(`^[A-Za-z0-9_./=@+-][A-Za-z0-9_./:=@+-]*$`)

// scalar writes s as a YAML string: plain when it can only be read so
// ("-addr=0.0.0.0:8080", "probes-example:latest"), double-quoted otherwise
// ("true", "8080", "--x: y", "a #b"), so that an argument never becomes a
// boolean, a number, a mapping or a comment.
func scalar(s string) string {
	if plain.MatchString(s) && !readsAsOther(s) {
		return s
	}
	return strconv.Quote(s)
}

// readsAsOther reports whether YAML (1.1 or 1.2) would read the plain
// scalar s as a boolean, a null or a number.
func readsAsOther(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf", ".nan":
		return true
	}
	if _, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64); err == nil {
		return true
	}
	_, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64) // 0x1f, 0o17
	return err == nil
}
