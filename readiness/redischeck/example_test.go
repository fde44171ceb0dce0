package redischeck_test

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/redischeck"
)

func ExampleNew() {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		panic(err)
	}
	// The service's own client; without ContextTimeoutEnabled New refuses
	// it, since go-redis would ignore the check's timeout.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()

	check, err := redischeck.New(rdb, redischeck.MasterLinkDown(probes.Fail))
	if err != nil {
		panic(err)
	}
	err = ready.Add("redis", check, probes.Every(5*time.Second), probes.Timeout(time.Second),
		probes.ComponentType("datastore"))
	if err != nil {
		panic(err)
	}
	fmt.Println("added")
	// Output: added
}
