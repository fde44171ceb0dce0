package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

// The manifest reader never panics, never accepts a document with a key
// set twice, and reads a document it accepts as kubectl's YAML-to-JSON
// conversion does.
func FuzzReadManifest(f *testing.F) {
	good, err := os.ReadFile("../../example/deploy/deployment.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(good),
		anchored,
		anchored + "---\n",
		"---\n---\n# nothing\n--- null\n",
		strings.Replace(string(good), "kind: Deployment\n", "kind: Service\nkind: Deployment\n", 1),
		strings.Replace(anchored, "kind: Pod\n", "", 1) + "kind: *kind\n",
		strings.Replace(anchored, "        <<: *probe\n", "        <<: [*ready, *probe]\n", 1),
		strings.Replace(anchored, "        <<: *probe\n", "        <<: *probe\n        <<: *ready\n", 1),
		"apiVersion: v1\nkind: Pod\nmetadata: &m\n  name: *m\n",
		strings.Replace(anchored, "  name: p\n", "  name: p\n  annotations: {probes.probekit.dev/stop: \"drain=5s on-drain=0s shutdown-timeout=15s after-close=1h stop=1h23s\"}\n", 1),
		strings.Replace(anchored, "  name: p\n", "  name: p\n  annotations: {probes.probekit.dev/stop: \"drain=5s drain=5s\"}\n", 1),
		"a: &a {b: 1}\nc: {<<: *a, b: 2}\n1: x\n\"1\": y\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: a\n      readinessProbe: {periodSeconds: 2147483647, failureThreshold: 2147483647, timeoutSeconds: -2147483648, httpGet: {path: /readyz/, port: 8081}}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  terminationGracePeriodSeconds: 9223372036854775807\n  containers:\n    - name: a\n      lifecycle: {preStop: {sleep: {seconds: 18446744074}}}\n      startupProbe: {periodSeconds: 1000000000, failureThreshold: 11, httpGet: {path: /startupz, port: 8081}}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s, annotations: {service.beta.kubernetes.io/aws-load-balancer-healthcheck-port: x}}\nspec: {type: LoadBalancer, loadBalancerClass: service.k8s.aws/nlb, selector: {app: p}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: p}}\nspec: {containers: [{name: a}]}\n",
		"apiVersion: cloud.google.com/v1beta1\nkind: BackendConfig\nmetadata: {name: b}\nspec: null\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s, annotations: {cloud.google.com/backend-config: '{\"ports\": {\"0\": \"b\"}}'}}\nspec: {selector: {app: p}, ports: [{port: 0}]}\n",
		"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, annotations: {alb.ingress.kubernetes.io/healthcheck-port: traffic-port}}\nspec: {defaultBackend: {resource: {kind: Bucket, name: b}}, rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}]}}]}\n",
	} {
		f.Add([]byte(seed))
	}
	// The files deployspec writes behind each balancer, and an Ingress.
	for _, b := range balancers() {
		f.Add([]byte(generated(f, b, 15e9, 15e9)))
	}
	f.Add([]byte(generated(f, nil, 15e9, 15e9) + "---\n" + plainService + "---\n" + albIngress))
	s := deployspec.Service{WarmupDeadline: 120e9, Stop: server.Timings{Drain: 5e9, ShutdownTimeout: 15e9}, ProbeAddr: "0.0.0.0:8081"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := lintYAML("f.yaml", raw, fixed(s), "")
		if err == nil && hasDuplicate(raw) {
			t.Fatalf("accepted a document with a key set twice:\n%s", raw)
		}
		// One document: what the linter decodes is what kubectl would send.
		// go-yaml v3 reads an empty scalar with the non-specific tag "!"
		// as null, v2 as "", and its node keeps no trace of the tag.
		if nonSpecific.Match(raw) {
			return
		}
		var doc yaml.Node
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		if dec.Decode(&doc) != nil || len(doc.Content) == 0 || !errors.Is(dec.Decode(new(yaml.Node)), io.EOF) {
			return
		}
		root, err := resolveDoc(doc.Content[0])
		if err != nil {
			return
		}
		got, err := toJSON(root)
		want, wantErr := sigsyaml.YAMLToJSON(raw)
		if err == nil && wantErr == nil && !bytes.Equal(got, want) {
			t.Fatalf("read as\n%s\nbut kubectl reads\n%s", got, want)
		}
	})
}

var nonSpecific = regexp.MustCompile(`(^|[\s,\[{])!([\s,\]}]|$)`)

// hasDuplicate reports whether go-yaml v3, decoding each document of raw,
// finds a mapping key defined twice.
func hasDuplicate(raw []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var v any
		err := dec.Decode(&v)
		switch {
		case err == nil:
			continue
		case strings.Contains(err.Error(), "already defined"):
			return true
		case errors.Is(err, io.EOF):
			return false
		}
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return false // a syntax error ends the stream
		}
	}
}
