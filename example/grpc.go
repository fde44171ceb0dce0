package main

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/grpchealth"
)

// itemsService is the gRPC service items.v1.Items, written out by hand over
// protobuf's well-known wrapper types so that no code generator runs:
//
//	service Items {
//	  // Get returns the name of the item with the given id.
//	  rpc Get(google.protobuf.Int64Value) returns (google.protobuf.StringValue);
//	}
const itemsService = "items.v1.Items"

type itemsServer interface {
	Get(ctx context.Context, id *wrapperspb.Int64Value) (*wrapperspb.StringValue, error)
}

var itemsDesc = grpc.ServiceDesc{
	ServiceName: itemsService,
	HandlerType: (*itemsServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Get",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.Int64Value)
			if err := dec(in); err != nil {
				return nil, err
			}
			get := func(ctx context.Context, req any) (any, error) {
				return srv.(itemsServer).Get(ctx, req.(*wrapperspb.Int64Value))
			}
			if intercept == nil {
				return get(ctx, in)
			}
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + itemsService + "/Get"}, get)
		},
	}},
	Metadata: "items/v1/items.proto",
}

// grpcItems serves items.v1.Items from the cache.
type grpcItems struct{ c *cache }

func (g grpcItems) Get(_ context.Context, id *wrapperspb.Int64Value) (*wrapperspb.StringValue, error) {
	items := g.c.items.Load()
	if items == nil {
		return nil, status.Error(codes.Unavailable, "cache not loaded")
	}
	it, ok := (*items)[int(id.GetValue())]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no item %d", id.GetValue())
	}
	return wrapperspb.String(it.Name), nil
}

// warmupInterceptor answers the application's RPCs (not the health
// service's) with Unavailable while the service may not serve, as
// server.WarmupGuard does for HTTP.
func warmupInterceptor(lc *probes.Lifecycle) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, "/"+itemsService+"/") {
			if p := lc.Phase(); !probes.Serves(p, lc.Started()) {
				return nil, status.Error(codes.Unavailable, "service unavailable: "+p.String())
			}
		}
		return handler(ctx, req)
	}
}

// grpcPart is the example's gRPC server on addr, with the health service
// (items.v1.Items answering readiness) and items.v1.Items, beside the HTTP
// server.
func grpcPart(c *cache, addr string) app.Part {
	return app.PartFunc(func(a *app.App) error {
		gs := grpc.NewServer(append(grpchealth.ServerOptions(), grpc.UnaryInterceptor(warmupInterceptor(a.Lifecycle)))...)
		gs.RegisterService(&itemsDesc, grpcItems{c})
		return grpchealth.Part(gs, addr, grpchealth.Services(itemsService)).Attach(a)
	})
}
