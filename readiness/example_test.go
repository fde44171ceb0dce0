package readiness_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
)

func ExampleGate_Add() {
	lc := probes.NewLifecycle()
	ready := readiness.New(lc)

	// Any Pinger fits: *sql.DB, *pgxpool.Pool, most cache clients.
	var db readiness.Pinger = pinger{}
	_ = ready.Add("postgres", readiness.Ping(db), probes.Every(5*time.Second), probes.Timeout(time.Second))
	// A failing non-critical dependency makes readiness warn, not fail.
	_ = ready.Add("search", probes.CheckFunc(func(ctx context.Context) error {
		return errors.New("index offline")
	}), probes.NonCritical())

	err := ready.Add("bad", readiness.Ping(db), probes.Every(0))
	fmt.Println(err)
	// Output:
	// readiness: check "bad": probes: Every(0s): the interval must be positive
}
