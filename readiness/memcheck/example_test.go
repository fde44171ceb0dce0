package memcheck_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/memcheck"
)

func ExampleNew() {
	ready, err := readiness.New(probes.NewLifecycle())
	if err != nil {
		panic(err)
	}
	mem, err := memcheck.New() // the container's cgroup and GOMEMLIMIT, warn above 90 %
	if err != nil {
		panic(err)
	}
	// Memory is this instance's own: probes.Local().
	if err := ready.Add("memory", mem, probes.Local(), probes.ComponentType("system")); err != nil {
		panic(err)
	}

	_, err = memcheck.New(memcheck.WarnAbove(90))
	fmt.Println(err)
	// Output:
	// memcheck: WarnAbove(90): the ratio must be in (0, 1]
}

func ExampleCgroupDir() {
	// A cgroup as a container with a 1 GiB limit sees it, 950 MiB in use.
	dir, err := os.MkdirTemp("", "cgroup")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "memory.max"), []byte("1073741824\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "memory.current"), []byte("996147200\n"), 0o600)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64)) // no GOMEMLIMIT here

	mem, err := memcheck.New(memcheck.CgroupDir(dir))
	if err != nil {
		panic(err)
	}
	err = mem.Check(context.Background())
	fmt.Println(probes.StatusOf(err), err)
	// Output:
	// warn cgroup memory 950 MiB of memory.max 1 GiB (92.8%), above 90%: warning
}
