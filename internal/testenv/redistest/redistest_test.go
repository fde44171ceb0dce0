package redistest_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes/internal/testenv/redistest"
	"github.com/probekit/probes/internal/testenv/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartStopRestart(t *testing.T) {
	r := redistest.Start(t, redistest.Password("s3cret"))
	if got := r.Do("PING"); got != "PONG" {
		t.Fatalf("fresh server: got %q, want PONG", got)
	}
	r.Stop()
	r.StartAgain()
	if got := r.Do("PING"); got != "PONG" {
		t.Fatalf("restarted server: got %q, want PONG", got)
	}
}

func TestReplica(t *testing.T) {
	master := redistest.Start(t, redistest.Password("pw"))
	replica := redistest.Start(t, redistest.Password("pw"), redistest.ReplicaOf(master))
	testutil.Eventually(t, "the replica's link is up", func() bool {
		return replica.Info("replication", "master_link_status") == "up"
	})
	if got := replica.Info("replication", "role"); got != "slave" {
		t.Errorf("role: got %q, want slave", got)
	}
	master.Stop()
	testutil.Eventually(t, "the replica's link is down", func() bool {
		return replica.Info("replication", "master_link_status") == "down"
	})
}

func TestPauseResume(t *testing.T) {
	r := redistest.Start(t)
	r.Pause()
	done := make(chan string, 1)
	go func() {
		reply, err := r.Try("PING")
		if err != nil {
			reply = err.Error()
		}
		done <- reply
	}()
	select {
	case got := <-done:
		t.Fatalf("paused server answered %q", got)
	case <-time.After(200 * time.Millisecond): // a bounded wait for an answer that must not come
	}
	r.Resume()
	if got := <-done; got != "PONG" {
		t.Errorf("resumed server: got %q, want PONG", got)
	}
}
