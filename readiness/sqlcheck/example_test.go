package sqlcheck_test

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/sqlcheck"
)

func ExampleNew() {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		panic(err)
	}
	const dsn = "app:secret@tcp(127.0.0.1:3306)/app?timeout=1s"
	db, err := sql.Open("mysql", dsn) // the service's own pool
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(20)

	// With the DSN, an exhausted pool is told from a hung server over a
	// connection of the check's own.
	check, err := sqlcheck.New(db, sqlcheck.DSN(dsn), sqlcheck.Query("SELECT 1 FROM items LIMIT 1"))
	if err != nil {
		panic(err)
	}
	err = ready.Add("mysql", check, probes.Every(5*time.Second), probes.Timeout(time.Second),
		probes.ComponentType("datastore"))
	if err != nil {
		panic(err)
	}
	fmt.Println("added")
	// Output: added
}
