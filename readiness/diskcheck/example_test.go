package diskcheck_test

import (
	"fmt"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/diskcheck"
)

func ExampleNew() {
	ready, err := readiness.New(probes.NewLifecycle())
	if err != nil {
		panic(err)
	}
	// Warn below 10 % free (the default), fail below 64 MiB.
	spool, err := diskcheck.New("/var/spool/app", diskcheck.FailBelow(diskcheck.Bytes(64<<20)))
	if err != nil {
		panic(err)
	}
	// A local disk is this instance's own fault: probes.Local().
	if err := ready.Add("spool-disk", spool, probes.Local(), probes.ComponentType("system")); err != nil {
		panic(err)
	}

	_, err = diskcheck.New("/var/spool/app", diskcheck.WarnBelow(diskcheck.Fraction(10)))
	fmt.Println(err)
	// Output:
	// diskcheck: WarnBelow(1000%): a fraction must be in [0, 1]
}
