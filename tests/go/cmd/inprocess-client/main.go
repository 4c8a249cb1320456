// Command inprocess-client checks cohortd's flagd.sync.v1 service the way a Go
// service running the OpenFeature flagd provider in IN-PROCESS mode uses it:
// the provider (go-sdk-contrib/providers/flagd, evaluator flagd core) syncs the
// flag set from cohortd over gRPC and evaluates locally; every answer must equal
// what cohortd itself answers over flagd.evaluation.v1 RPC for the same flag
// and context (value, variant, reason, error code).
//
//	inprocess-client -sync HOST:PORT -rpc HOST:PORT -flags flags.json
//
// The flag keys and their types come from the flagd-format file cohortd serves
// (-flags). Driven over stdio: prints READY-FOR-CHANGE, reads `CHANGED` once the
// driver rewrote the file, waits for PROVIDER_CONFIGURATION_CHANGED, compares
// again against the new file's flags, prints OK. Any mismatch is printed on
// stderr and exits 1.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	fpb "cohortd.test/clients/gen/flagdv1"
	"cohortd.test/clients/internal/cases"
)

// answer is one evaluation from either side.
type answer struct {
	Value   any
	Variant string
	Reason  string
	Code    string
}

// flagTypes reads the flagd document and returns each flag's type, from its
// first variant's value ("bool", "string", "number", "object").
func flagTypes(path string) map[string]string {
	var doc struct {
		Flags map[string]struct {
			Variants map[string]any `json:"variants"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(cases.Must(os.ReadFile(path)), &doc); err != nil {
		cases.Fail("reading %s: %v", path, err)
	}
	out := map[string]string{}
	for key, f := range doc.Flags {
		for _, v := range f.Variants {
			switch v.(type) {
			case bool:
				out[key] = "bool"
			case string:
				out[key] = "string"
			case float64:
				out[key] = "number"
			default:
				out[key] = "object"
			}
			break
		}
	}
	if len(out) == 0 {
		cases.Fail("%s: no flags", path)
	}
	return out
}

// contexts covers every attribute the test flag files branch on, and one
// context without a targeting key.
func contexts() []map[string]any {
	var out []map[string]any
	plans := []string{"beta", "basic", "enterprise"}
	countries := []string{"NL", "DE", "US"}
	versions := []string{"1.9.0", "2.0.0", "v2.3.1", "3.0.0-rc.1"}
	for i := 0; i < 24; i++ {
		out = append(out, map[string]any{
			"targetingKey": fmt.Sprintf("user-%d", i),
			"email":        fmt.Sprintf("user-%d@%s", i, []string{"example.com", "staff.example.com"}[i%2]),
			"plan":         plans[i%3],
			"country":      countries[i%3],
			"version":      versions[i%4],
			"age":          float64(20 + 3*i),
		})
	}
	return append(out, map[string]any{"plan": "beta"})
}

func viaProvider(c *openfeature.Client, key, typ string, cx map[string]any) answer {
	tk, _ := cx["targetingKey"].(string)
	attrs := map[string]any{}
	for k, v := range cx {
		if k != "targetingKey" {
			attrs[k] = v
		}
	}
	ec := openfeature.NewEvaluationContext(tk, attrs)
	ctx := context.Background()
	pick := func(v any, variant string, r openfeature.Reason, code openfeature.ErrorCode) answer {
		return answer{cases.Normal(v), variant, string(r), string(code)}
	}
	switch typ {
	case "bool":
		d, _ := c.BooleanValueDetails(ctx, key, false, ec)
		return pick(d.Value, d.Variant, d.Reason, d.ErrorCode)
	case "string":
		d, _ := c.StringValueDetails(ctx, key, "caller-default", ec)
		return pick(d.Value, d.Variant, d.Reason, d.ErrorCode)
	case "number":
		d, _ := c.FloatValueDetails(ctx, key, -7.5, ec)
		return pick(d.Value, d.Variant, d.Reason, d.ErrorCode)
	default:
		d, _ := c.ObjectValueDetails(ctx, key, map[string]any{"caller": "default"}, ec)
		return pick(d.Value, d.Variant, d.Reason, d.ErrorCode)
	}
}

// viaRPC asks cohortd itself; an error status becomes the caller's default with
// the code flagd puts in the status message.
func viaRPC(c fpb.ServiceClient, key, typ string, cx map[string]any) answer {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ec := cases.Must(structpb.NewStruct(cx))
	var a answer
	var err error
	switch typ {
	case "bool":
		var r *fpb.ResolveBooleanResponse
		if r, err = c.ResolveBoolean(ctx, &fpb.ResolveBooleanRequest{FlagKey: key, Context: ec}); err == nil {
			a = answer{r.GetValue(), r.GetVariant(), r.GetReason(), ""}
		} else {
			a.Value = false
		}
	case "string":
		var r *fpb.ResolveStringResponse
		if r, err = c.ResolveString(ctx, &fpb.ResolveStringRequest{FlagKey: key, Context: ec}); err == nil {
			a = answer{r.GetValue(), r.GetVariant(), r.GetReason(), ""}
		} else {
			a.Value = "caller-default"
		}
	case "number":
		var r *fpb.ResolveFloatResponse
		if r, err = c.ResolveFloat(ctx, &fpb.ResolveFloatRequest{FlagKey: key, Context: ec}); err == nil {
			a = answer{r.GetValue(), r.GetVariant(), r.GetReason(), ""}
		} else {
			a.Value = -7.5
		}
	default:
		var r *fpb.ResolveObjectResponse
		if r, err = c.ResolveObject(ctx, &fpb.ResolveObjectRequest{FlagKey: key, Context: ec}); err == nil {
			a = answer{r.GetValue().AsMap(), r.GetVariant(), r.GetReason(), ""}
		} else {
			a.Value = map[string]any{"caller": "default"}
		}
	}
	if err != nil {
		msg := status.Convert(err).Message()
		a.Reason, a.Code = "ERROR", msg
		for _, code := range []string{"FLAG_NOT_FOUND", "TYPE_MISMATCH", "PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"} {
			if strings.Contains(msg, code) {
				a.Code = code
				break
			}
		}
	}
	a.Value = cases.Normal(a.Value)
	return a
}

// compare evaluates every flag for every context both ways; it returns the
// first difference ("" when none) and how many evaluations it compared.
// seen, when not nil, records every in-process answer by flag and context.
func compare(of *openfeature.Client, rpc fpb.ServiceClient, types map[string]string, seen map[string]answer) (string, int) {
	keys := make([]string, 0, len(types))
	for k := range types {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := 0
	for i, cx := range contexts() {
		for _, key := range keys {
			local, remote := viaProvider(of, key, types[key], cx), viaRPC(rpc, key, types[key], cx)
			// A disabled flag: flagd's in-process evaluator and RPC both give the
			// caller's default and reason DISABLED.
			if !reflect.DeepEqual(local, remote) {
				return fmt.Sprintf("%s %v: in-process %+v, cohortd RPC %+v", key, cx, local, remote), n
			}
			if seen != nil {
				seen[fmt.Sprintf("%s/%d", key, i)] = local
			}
			n++
		}
	}
	return "", n
}

func main() {
	syncAddr := flag.String("sync", "", "cohortd flagd.sync.v1 address HOST:PORT")
	rpcAddr := flag.String("rpc", "", "cohortd gRPC address HOST:PORT (flagd.evaluation.v1)")
	flagsPath := flag.String("flags", "", "the flagd-format file cohortd serves")
	flag.Parse()
	host, port, err := net.SplitHostPort(*syncAddr)
	if err != nil || *rpcAddr == "" || *flagsPath == "" {
		cases.Fail("usage: -sync HOST:PORT -rpc HOST:PORT -flags FILE")
	}
	var portNum uint16
	fmt.Sscan(port, &portNum)
	conn := cases.Must(grpc.NewClient(*rpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())))
	rpc := fpb.NewServiceClient(conn)

	changed := make(chan []string, 16)
	onChange := func(d openfeature.EventDetails) { changed <- d.FlagChanges }
	openfeature.AddHandler(openfeature.ProviderConfigChange, &onChange)
	provider := cases.Must(flagd.NewProvider(flagd.WithInProcessResolver(), flagd.WithHost(host),
		flagd.WithPort(portNum), flagd.WithDeadline(5000)))
	if err := openfeature.SetProviderAndWait(provider); err != nil {
		cases.Fail("flagd provider (in-process): %v", err)
	}
	client := openfeature.NewClient("cohortd-inprocess-client")
	before := map[string]answer{}
	if msg, n := compare(client, rpc, flagTypes(*flagsPath), before); msg != "" {
		cases.Fail("%s", msg)
	} else if n == 0 {
		cases.Fail("no evaluation compared")
	}
	d, _ := client.StringValueDetails(context.Background(), "no-such-flag", "caller-default",
		openfeature.NewEvaluationContext("user-1", nil))
	if d.Value != "caller-default" || d.ErrorCode != openfeature.FlagNotFoundCode {
		cases.Fail("unknown flag in-process: got %+v, want the caller's default with FLAG_NOT_FOUND", d)
	}

	fmt.Println("READY-FOR-CHANGE")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if strings.TrimSpace(line) != "CHANGED" {
		cases.Fail("driver said %q, want CHANGED", line)
	}
	select {
	case flags := <-changed:
		if len(flags) == 0 {
			cases.Fail("PROVIDER_CONFIGURATION_CHANGED names no flag")
		}
	case <-time.After(30 * time.Second):
		cases.Fail("no PROVIDER_CONFIGURATION_CHANGED within 30s")
	}
	// The sync push and the RPC snapshot come from one reload; a short bounded
	// retry covers the provider applying the push after firing the event.
	types := flagTypes(*flagsPath)
	deadline := time.Now().Add(10 * time.Second)
	for {
		after := map[string]answer{}
		msg, _ := compare(client, rpc, types, after)
		if msg == "" && reflect.DeepEqual(before, after) {
			msg = "the provider still gives every answer it gave before the change"
		}
		if msg == "" {
			break
		}
		if time.Now().After(deadline) {
			cases.Fail("after the change: %s", msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	openfeature.Shutdown()
	fmt.Println("OK")
}
