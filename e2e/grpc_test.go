//go:build e2e

package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// grpcOutcome is what the gRPC clients saw through a rolling restart.
type grpcOutcome struct {
	ok, failed int64
	codes      map[codes.Code]int64
}

// grpcRollingRestart runs two example instances serving gRPC, drives
// items.v1.Items/Get through a grpc-go client that balances round robin
// and follows each backend's health with Watch (healthCheckConfig), and
// restarts both instances in turn with SIGTERM.
func grpcRollingRestart(t *testing.T, bin string, drain string) grpcOutcome {
	grpcAddrs := []string{testutil.FreeAddr(t), testutil.FreeAddr(t)}
	argsOf := func(i int) []string {
		return []string{"-warmup", "200ms", "-drain", drain, "-shutdown-timeout", "5s", "-grpc-addr", grpcAddrs[i]}
	}
	instances := []*instance{
		startInstance(t, bin, "a", testutil.FreeAddr(t), argsOf(0)),
		startInstance(t, bin, "b", testutil.FreeAddr(t), argsOf(1)),
	}
	for _, a := range grpcAddrs {
		waitServing(t, a)
	}

	r := manual.NewBuilderWithScheme("e2e")
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: grpcAddrs[0]}, {Addr: grpcAddrs[1]}}})
	conn, err := grpc.NewClient(r.Scheme()+":///items", grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		byCode     = map[codes.Code]int64{}
		servedAt   sync.Map // backend address: when it last answered
		wg         sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
				var name wrapperspb.StringValue
				var backend peer.Peer
				err := conn.Invoke(callCtx, "/items.v1.Items/Get", wrapperspb.Int64(7), &name, grpc.Peer(&backend))
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
					servedAt.Store(backend.Addr.String(), time.Now())
				case ctx.Err() != nil: // the test ended the load
				default:
					failed.Add(1)
					mu.Lock()
					byCode[status.Code(err)]++
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Second) // load before the first restart
	for i, in := range instances {
		in.terminate(t)
		restarted := time.Now()
		instances[i] = startInstanceAt(t, bin, in.name, in.addr, in.probeAddr, argsOf(i))
		// The client sends to the new instance again before the next one
		// goes: its health stream has seen it serving.
		testutil.Eventually(t, "the client's RPCs reach "+in.name+" again", func() bool {
			at, ok := servedAt.Load(grpcAddrs[i])
			return ok && at.(time.Time).After(restarted)
		})
	}
	stop()
	wg.Wait()
	return grpcOutcome{ok: ok.Load(), failed: failed.Load(), codes: byCode}
}

// waitServing waits until the gRPC health service at addr answers SERVING.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	testutil.Eventually(t, "gRPC at "+addr+" SERVING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
}

// A rolling restart of two gRPC instances under load from a client with
// client-side health checking: with the drain, no RPC fails.
func TestGRPCRollingRestart(t *testing.T) {
	bin := buildExample(t)
	with := grpcRollingRestart(t, bin, "1s")
	t.Logf("with a 1s drain: %d RPCs ok, %d failed %v", with.ok, with.failed, with.codes)
	without := grpcRollingRestart(t, bin, "0")
	t.Logf("without a drain: %d RPCs ok, %d failed %v", without.ok, without.failed, without.codes)
	if with.ok < 1000 {
		t.Fatalf("only %d RPCs went through: the load did not run", with.ok)
	}
	if with.failed != 0 {
		t.Errorf("%d RPCs failed through the rolling restart with the drain: %v", with.failed, with.codes)
	}
}
