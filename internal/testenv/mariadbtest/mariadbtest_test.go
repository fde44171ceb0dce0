package mariadbtest_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/probekit/probes/internal/testenv/mariadbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ping(dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

func TestStartStopRestart(t *testing.T) {
	m := mariadbtest.Start(t, mariadbtest.Password("s3cret"), mariadbtest.MaxConnections(10))
	tests := []struct {
		name, password, want string
	}{
		{"right password", "s3cret", ""},
		{"wrong password", "wrong", "Access denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ping(m.DSN(tt.password))
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	m.Stop()
	if err := ping(m.DSN("s3cret")); err == nil {
		t.Fatal("stopped server answered")
	}
	m.StartAgain()
	if err := ping(m.DSN("s3cret")); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}
