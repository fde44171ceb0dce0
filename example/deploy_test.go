package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileArgs returns the example's flags a deployment file passes: the args
// of a Deployment's container, or the ExecStart of a unit.
func fileArgs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var args []string
	inArgs := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "ExecStart="):
			return strings.Fields(line)[1:]
		case line == "args:":
			inArgs = true
		case inArgs && strings.HasPrefix(line, "- -"):
			args = append(args, strings.TrimPrefix(line, "- "))
		case inArgs:
			return args
		}
	}
	t.Fatalf("%s: no args found", path)
	return nil
}

// The checked-in deployment files are exactly what -print-deploy prints for
// the flags they pass: their timings cannot drift from the flags.
func TestDeployFilesAreGenerated(t *testing.T) {
	for file, form := range map[string]string{
		"deployment.yaml":         deployKubernetes,
		"deployment-grpc.yaml":    deployKubernetesGRPC,
		"deployment-aws-alb.yaml": deployKubernetes,
		"deployment-aws-nlb.yaml": deployKubernetes,
		"deployment-gke.yaml":     deployKubernetes,
		"probes-example.service":  deploySystemd,
	} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("deploy", file)
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parseConfig(append(fileArgs(t, path), printed(form)), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			if err := printDeploy(&got, cfg, cfg.printDeploy); err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("%s differs from what -print-deploy prints for its flags; generate it again with the command in its header.\ngot:\n%s", path, got.String())
			}
		})
	}
}

func TestPrintDeployRejects(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-print-deploy=helm"}, "use kubernetes, kubernetes-grpc or systemd"},
	} {
		if _, err := parseConfig(tt.args, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-grpc-addr=", "-print-deploy=kubernetes-grpc"}, "-grpc-addr is empty"},
		{[]string{"-drain=1s", "-print-deploy"}, "set -drain to at least"},
	} {
		cfg, err := parseConfig(tt.args, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if err := printDeploy(&strings.Builder{}, cfg, cfg.printDeploy); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}
