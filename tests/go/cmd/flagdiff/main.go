// Command flagdiff evaluates the same flags for the same random contexts on two
// servers speaking flagd.evaluation.v1 (say flagd-ref and cohortd) and prints
// every difference in value, variant, reason or error code, then a summary line.
//
//	flagdiff -a 127.0.0.1:8013 -b 127.0.0.1:9013 -f flags.json -n 1000 [-seed 1]
//
// Flags and their types come from the flagd flag file (the type of each flag's
// first variant picks ResolveBoolean/String/Float/Object). Contexts are drawn
// from small pools so targeting rules both match and miss; about one in ten has
// no targeting key. Exit status: 0 when identical, 1 on any mismatch, 2 on a
// usage or connection error.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	pb "cohortd.test/clients/gen/flagdv1"
)

// Result is what one server answered for one flag and context.
type Result struct {
	Value   any    `json:"value"`
	Variant string `json:"variant"`
	Reason  string `json:"reason"`
	Code    string `json:"error,omitempty"`
}

type kind int

const (
	kBool kind = iota
	kString
	kFloat
	kObject
)

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "flagdiff: "+format+"\n", args...)
	os.Exit(2)
}

// flagKinds reads the flag keys and value kinds from a flagd flag file.
func flagKinds(path string) ([]string, map[string]kind) {
	data, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	var doc struct {
		Flags map[string]struct {
			Variants map[string]any `json:"variants"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		die("%s: %v", path, err)
	}
	kinds := map[string]kind{}
	var keys []string
	for key, f := range doc.Flags {
		k := kObject
		for _, v := range f.Variants {
			switch v.(type) {
			case bool:
				k = kBool
			case string:
				k = kString
			case float64:
				k = kFloat
			}
			break
		}
		kinds[key] = k
		keys = append(keys, key)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		die("%s defines no flags", path)
	}
	return keys, kinds
}

var (
	domains   = []string{"example.com", "openfeature.dev", "faas.com", "gmail.com"}
	countries = []string{"NL", "US", "DE", "FR", "JP"}
	plans     = []string{"free", "pro", "beta", "enterprise"}
	versions  = []string{"1.0.0", "1.2.3", "2.0.0", "v2.1.0", "1.2", "3.0.0-rc.1", "0.9.9+build.5"}
)

func randomContext(r *rand.Rand, i int) map[string]any {
	c := map[string]any{}
	if r.Intn(10) != 0 {
		c["targetingKey"] = fmt.Sprintf("user-%d-%d", i, r.Intn(1_000_000))
	}
	if r.Intn(4) != 0 {
		c["email"] = fmt.Sprintf("u%d@%s", r.Intn(1000), domains[r.Intn(len(domains))])
	}
	if r.Intn(4) != 0 {
		c["country"] = countries[r.Intn(len(countries))]
	}
	if r.Intn(3) != 0 {
		c["plan"] = plans[r.Intn(len(plans))]
	}
	if r.Intn(3) != 0 {
		c["version"] = versions[r.Intn(len(versions))]
	}
	if r.Intn(2) == 0 {
		c["age"] = float64(r.Intn(90))
	}
	return c
}

func resolve(ctx context.Context, c pb.ServiceClient, key string, k kind, ec *structpb.Struct) Result {
	var (
		res Result
		err error
	)
	switch k {
	case kBool:
		var r *pb.ResolveBooleanResponse
		if r, err = c.ResolveBoolean(ctx, &pb.ResolveBooleanRequest{FlagKey: key, Context: ec}); err == nil {
			res = Result{r.GetValue(), r.GetVariant(), r.GetReason(), ""}
		}
	case kString:
		var r *pb.ResolveStringResponse
		if r, err = c.ResolveString(ctx, &pb.ResolveStringRequest{FlagKey: key, Context: ec}); err == nil {
			res = Result{r.GetValue(), r.GetVariant(), r.GetReason(), ""}
		}
	case kFloat:
		var r *pb.ResolveFloatResponse
		if r, err = c.ResolveFloat(ctx, &pb.ResolveFloatRequest{FlagKey: key, Context: ec}); err == nil {
			res = Result{r.GetValue(), r.GetVariant(), r.GetReason(), ""}
		}
	default:
		var r *pb.ResolveObjectResponse
		if r, err = c.ResolveObject(ctx, &pb.ResolveObjectRequest{FlagKey: key, Context: ec}); err == nil {
			res = Result{r.GetValue().AsMap(), r.GetVariant(), r.GetReason(), ""}
		}
	}
	if err != nil {
		st := status.Convert(err)
		res = Result{Code: st.Code().String() + ": " + st.Message()}
	}
	return res
}

func dial(addr string) pb.ServiceClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		die("%s: %v", addr, err)
	}
	return pb.NewServiceClient(conn)
}

func main() {
	a := flag.String("a", "", "first server HOST:PORT (flagd.evaluation.v1)")
	b := flag.String("b", "", "second server HOST:PORT")
	file := flag.String("f", "", "flagd flag file both servers serve")
	n := flag.Int("n", 1000, "number of random contexts")
	seed := flag.Int64("seed", 1, "random seed (the same seed gives the same contexts)")
	show := flag.Int("show", 20, "mismatches to print in full")
	flag.Parse()
	if *a == "" || *b == "" || *file == "" || *n <= 0 {
		die("usage: flagdiff -a HOST:PORT -b HOST:PORT -f flags.json [-n N] [-seed S]")
	}
	keys, kinds := flagKinds(*file)
	ca, cb := dial(*a), dial(*b)
	r := rand.New(rand.NewSource(*seed))
	start := time.Now()
	evals, mismatches := 0, 0
	for i := 0; i < *n; i++ {
		c := randomContext(r, i)
		ec, err := structpb.NewStruct(c)
		if err != nil {
			die("context: %v", err)
		}
		for _, key := range keys {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			ra := resolve(ctx, ca, key, kinds[key], ec)
			rb := resolve(ctx, cb, key, kinds[key], ec)
			cancel()
			evals++
			if !reflect.DeepEqual(ra, rb) {
				mismatches++
				if mismatches <= *show {
					ctxJSON, _ := json.Marshal(c)
					ja, _ := json.Marshal(ra)
					jb, _ := json.Marshal(rb)
					fmt.Printf("MISMATCH flag=%s context=%s\n  a=%s\n  b=%s\n", key, ctxJSON, ja, jb)
				}
			}
		}
	}
	fmt.Printf("flagdiff: %d contexts x %d flags = %d evaluations, %d mismatches (a=%s b=%s seed=%d, %.1fs)\n",
		*n, len(keys), evals, mismatches, *a, *b, *seed, time.Since(start).Seconds())
	if mismatches > 0 {
		os.Exit(1)
	}
}
