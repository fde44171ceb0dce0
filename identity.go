package probes

import (
	"cmp"
	"os"
	"strings"
)

// Identity names a service and this instance of it. Every surface that
// speaks of the lifecycle shows it: the health+json bodies (serviceId,
// releaseId, and the deep view's instance), the status page's title, the
// library's log lines, the metrics' info series and the fleet view. It is
// public: anonymous readers see it too.
type Identity struct {
	// Service names the service, such as "items-api".
	Service string
	// Release is the running build's version, such as "1.4.2".
	Release string
	// Instance names this process among the service's instances: the
	// pod's name in Kubernetes, the host's name elsewhere.
	Instance string
	// Node is the machine the instance runs on: the Kubernetes node's
	// name; empty when not known.
	Node string
}

// Identify names the lifecycle's service and instance. What id leaves
// empty of Instance and Node is read from the environment: POD_NAME and
// NODE_NAME, the names a pod spec's downward API conventionally gives
// metadata.name and spec.nodeName, and, without POD_NAME, the host name.
// Text is cut to 253 bytes (a Kubernetes name's limit) and control
// characters are dropped, so that no surface carries a broken line.
func Identify(id Identity) LifecycleOption {
	return func(l *Lifecycle) { l.identity = id.resolve(os.Getenv, os.Hostname) }
}

// resolve fills Instance and Node from the environment and cleans every
// field.
func (id Identity) resolve(getenv func(string) string, hostname func() (string, error)) Identity {
	if id.Instance == "" {
		id.Instance = getenv("POD_NAME")
	}
	if id.Instance == "" {
		id.Instance, _ = hostname()
	}
	id.Node = cmp.Or(id.Node, getenv("NODE_NAME"))
	for _, f := range []*string{&id.Service, &id.Release, &id.Instance, &id.Node} {
		*f = cleanName(*f)
	}
	return id
}

// cleanName drops control characters and invalid UTF-8 from s and cuts it
// to 253 bytes, on a character boundary.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	const most = 253
	if len(s) <= most {
		return s
	}
	cut := most
	for cut > 0 && s[cut]&0xc0 == 0x80 { // a continuation byte: back to the rune's start
		cut--
	}
	return s[:cut]
}

// Identity returns what Identify named; zero without it.
func (l *Lifecycle) Identity() Identity { return l.identity }
