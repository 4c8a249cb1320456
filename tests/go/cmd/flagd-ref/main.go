// Command flagd-ref serves flagd.evaluation.v1 over gRPC on a flagd flag file,
// evaluating with flagd's own evaluator (github.com/open-feature/flagd/core,
// pkg/evaluator and pkg/store): the reference the differential harness
// (cmd/flagdiff) and benches/compare_flagd.sh compare cohortd against.
//
// Why not the flagd binary: the module github.com/open-feature/flagd/flagd is
// not served by the Go module proxy reachable from our machines (403 "This
// module version is not available" for every version), while flagd/core is.
// The evaluation (JSONLogic, fractional, sem_ver, $ref, reasons, error codes)
// is flagd's code; the gRPC layer here is ours and maps errors to status codes
// as flagd's flag_evaluator.go does (FLAG_NOT_FOUND and FLAG_DISABLED: NotFound,
// TYPE_MISMATCH: InvalidArgument, PARSE_ERROR: DataLoss, other: Unknown).
//
//	flagd-ref -f flags.json -p 8013
//
// The file is polled every 500 ms; a change is applied (invalid files are
// logged and ignored, the last good set stays) and announced on EventStream
// as configuration_change.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/open-feature/flagd/core/pkg/evaluator"
	"github.com/open-feature/flagd/core/pkg/logger"
	"github.com/open-feature/flagd/core/pkg/model"
	"github.com/open-feature/flagd/core/pkg/store"
	isync "github.com/open-feature/flagd/core/pkg/sync"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	pb "cohortd.test/clients/gen/flagdv1"
)

const source = "file"

type server struct {
	pb.UnimplementedServiceServer
	eval *evaluator.JSON

	mu       sync.Mutex
	watchers map[chan struct{}]struct{}
}

func errFormat(err error) error {
	switch err.Error() {
	case model.FlagNotFoundErrorCode, model.FlagDisabledErrorCode:
		return status.Error(codes.NotFound, err.Error())
	case model.TypeMismatchErrorCode:
		return status.Error(codes.InvalidArgument, err.Error())
	case model.ParseErrorCode:
		return status.Error(codes.DataLoss, err.Error())
	default:
		return status.Error(codes.Unknown, err.Error())
	}
}

func meta(m model.Metadata) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		return &structpb.Struct{}
	}
	return s
}

func (s *server) ResolveBoolean(ctx context.Context, r *pb.ResolveBooleanRequest) (*pb.ResolveBooleanResponse, error) {
	v, variant, reason, md, err := s.eval.ResolveBooleanValue(ctx, "", r.GetFlagKey(), r.GetContext().AsMap())
	if err != nil {
		return nil, errFormat(err)
	}
	return &pb.ResolveBooleanResponse{Value: v, Variant: variant, Reason: reason, Metadata: meta(md)}, nil
}

func (s *server) ResolveString(ctx context.Context, r *pb.ResolveStringRequest) (*pb.ResolveStringResponse, error) {
	v, variant, reason, md, err := s.eval.ResolveStringValue(ctx, "", r.GetFlagKey(), r.GetContext().AsMap())
	if err != nil {
		return nil, errFormat(err)
	}
	return &pb.ResolveStringResponse{Value: v, Variant: variant, Reason: reason, Metadata: meta(md)}, nil
}

func (s *server) ResolveFloat(ctx context.Context, r *pb.ResolveFloatRequest) (*pb.ResolveFloatResponse, error) {
	v, variant, reason, md, err := s.eval.ResolveFloatValue(ctx, "", r.GetFlagKey(), r.GetContext().AsMap())
	if err != nil {
		return nil, errFormat(err)
	}
	return &pb.ResolveFloatResponse{Value: v, Variant: variant, Reason: reason, Metadata: meta(md)}, nil
}

func (s *server) ResolveInt(ctx context.Context, r *pb.ResolveIntRequest) (*pb.ResolveIntResponse, error) {
	v, variant, reason, md, err := s.eval.ResolveIntValue(ctx, "", r.GetFlagKey(), r.GetContext().AsMap())
	if err != nil {
		return nil, errFormat(err)
	}
	return &pb.ResolveIntResponse{Value: v, Variant: variant, Reason: reason, Metadata: meta(md)}, nil
}

func (s *server) ResolveObject(ctx context.Context, r *pb.ResolveObjectRequest) (*pb.ResolveObjectResponse, error) {
	v, variant, reason, md, err := s.eval.ResolveObjectValue(ctx, "", r.GetFlagKey(), r.GetContext().AsMap())
	if err != nil {
		return nil, errFormat(err)
	}
	obj, err := structpb.NewStruct(v)
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &pb.ResolveObjectResponse{Value: obj, Variant: variant, Reason: reason, Metadata: meta(md)}, nil
}

func (s *server) ResolveAll(ctx context.Context, r *pb.ResolveAllRequest) (*pb.ResolveAllResponse, error) {
	values, md, err := s.eval.ResolveAllValues(ctx, "", r.GetContext().AsMap())
	if err != nil {
		return nil, errFormat(err)
	}
	out := &pb.ResolveAllResponse{Flags: map[string]*pb.AnyFlag{}, Metadata: meta(md)}
	for _, v := range values {
		if v.Error != nil {
			continue // flagd leaves flags that fail to evaluate out of ResolveAll
		}
		f := &pb.AnyFlag{Reason: v.Reason, Variant: v.Variant, Metadata: meta(v.Metadata)}
		switch x := v.Value.(type) {
		case bool:
			f.Value = &pb.AnyFlag_BoolValue{BoolValue: x}
		case string:
			f.Value = &pb.AnyFlag_StringValue{StringValue: x}
		case float64:
			f.Value = &pb.AnyFlag_DoubleValue{DoubleValue: x}
		case int64:
			f.Value = &pb.AnyFlag_DoubleValue{DoubleValue: float64(x)}
		case map[string]any:
			obj, err := structpb.NewStruct(x)
			if err != nil {
				continue
			}
			f.Value = &pb.AnyFlag_ObjectValue{ObjectValue: obj}
		}
		out.Flags[v.FlagKey] = f
	}
	return out, nil
}

func (s *server) EventStream(_ *pb.EventStreamRequest, stream pb.Service_EventStreamServer) error {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, ch)
		s.mu.Unlock()
	}()
	if err := stream.Send(&pb.EventStreamResponse{Type: "provider_ready"}); err != nil {
		return err
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case <-tick.C:
			if err := stream.Send(&pb.EventStreamResponse{Type: "keep_alive"}); err != nil {
				return err
			}
		case <-ch:
			data, _ := structpb.NewStruct(map[string]any{"flags": map[string]any{}})
			if err := stream.Send(&pb.EventStreamResponse{Type: "configuration_change", Data: data}); err != nil {
				return err
			}
		}
	}
}

func (s *server) load(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return s.eval.SetState(isync.DataSync{FlagData: string(data), Source: source})
}

func (s *server) poll(path string) {
	last := modTime(path)
	for range time.Tick(500 * time.Millisecond) {
		now := modTime(path)
		if now.Equal(last) {
			continue
		}
		last = now
		if err := s.load(path); err != nil {
			log.Printf("flagd-ref: keeping the last good flags: %v", err)
			continue
		}
		s.mu.Lock()
		for ch := range s.watchers {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
	}
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

func main() {
	file := flag.String("f", "", "flagd flag-definition file (JSON)")
	port := flag.Int("p", 8013, "gRPC port on 127.0.0.1 (0: pick one and print it)")
	flag.Parse()
	if *file == "" {
		log.Fatal("flagd-ref: -f FILE is required")
	}
	lg := logger.NewLogger(zap.NewNop(), false)
	st, err := store.NewStore(lg, []string{source})
	if err != nil {
		log.Fatalf("flagd-ref: store: %v", err)
	}
	s := &server{eval: evaluator.NewJSON(lg, st), watchers: map[chan struct{}]struct{}{}}
	if err := s.load(*file); err != nil {
		log.Fatalf("flagd-ref: %s: %v", *file, err)
	}
	go s.poll(*file)
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatalf("flagd-ref: listen: %v", err)
	}
	srv := grpc.NewServer()
	pb.RegisterServiceServer(srv, s)
	fmt.Printf("flagd-ref listening on %s\n", lis.Addr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		srv.GracefulStop()
	}()
	if err := srv.Serve(lis); err != nil {
		log.Fatalf("flagd-ref: %v", err)
	}
}
