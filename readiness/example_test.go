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
	ready, err := readiness.New(lc)
	if err != nil {
		panic(err)
	}

	// Any Pinger fits: *sql.DB, *pgxpool.Pool, most cache clients.
	db, err := readiness.Ping(pinger{})
	if err != nil {
		panic(err)
	}
	_ = ready.Add("postgres", db, probes.Every(5*time.Second), probes.Timeout(time.Second))
	// A failing non-critical dependency makes readiness warn, not fail.
	_ = ready.Add("search", probes.CheckFunc(func(ctx context.Context) error {
		return errors.New("index offline")
	}), probes.NonCritical())

	err = ready.Add("bad", db, probes.Every(0))
	fmt.Println(err)
	// Output:
	// readiness: check "bad": Every(0s): the interval must be positive
}
