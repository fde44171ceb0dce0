package redact_test

import (
	"fmt"

	"github.com/probekit/probes/redact"
)

func ExampleString() {
	fmt.Println(redact.String(`dial postgres://app:hunter2@db:5432/items: connection refused`))
	fmt.Println(redact.String(`host=db user=app password=hunter2`))
	fmt.Println(redact.String(`dial app:hunter2@tcp(db:3306)/items`))
	// Output:
	// dial postgres://app:xxxxx@db:5432/items: connection refused
	// host=db user=app password=xxxxx
	// dial app:xxxxx@tcp(db:3306)/items
}
