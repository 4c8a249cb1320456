// Command cohortd-go-client checks a running `cohortd serve` from Go, the way a
// Go service would call it: the cohortd.v1 client generated from
// proto/cohortd/v1 over TCP and over the Unix socket (Assign, AssignAll,
// Explain, Watch) and raw flagd.evaluation.v1 gRPC generated from proto/flagd
// (Resolve*, EventStream); with -openfeature HOST:PORT, also the OpenFeature Go
// SDK with the flagd provider in RPC mode, against cohortd's Connect protocol
// endpoints on its OFREP listener (the provider is a connect-go client that
// speaks Connect over HTTP/1.1, not gRPC).
//
//	cohortd-go-client -tcp 127.0.0.1:PORT -unix /path/sock -cases cases.json [-openfeature 127.0.0.1:OFREP_PORT]
//
// cases.json holds contexts and, for each, the line `cohortd assign --all` printed
// for it offline (computed by the driver, tests/clients_go.rs, at test time).
// Driven over stdio: prints READY-FOR-CHANGE, reads `CHANGED <cases.json>` once
// the driver rewrote the config, waits for the Watch event, the flagd
// configuration_change event (and the provider event), checks the new answers,
// prints OK.
// Any mismatch is printed on stderr and exits 1.
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	pb "cohortd.test/clients/gen/cohortdv1"
	fpb "cohortd.test/clients/gen/flagdv1"
)

// Expected is one line of `cohortd assign --all`.
type Expected struct {
	Version     string                `json:"version"`
	Assignments map[string]Assignment `json:"assignments"`
}

// Assignment is one experiment's entry in an `assign --all` line.
type Assignment struct {
	Variant         string `json:"variant"`
	Value           any    `json:"value"`
	Enrolled        bool   `json:"enrolled"`
	Reason          string `json:"reason"`
	Epoch           uint32 `json:"epoch"`
	SaltFingerprint string `json:"saltFingerprint"`
}

// Cases pairs each context with its offline answer.
type Cases struct {
	Contexts []map[string]any `json:"contexts"`
	Expected []Expected       `json:"expected"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAILED "+format+"\n", args...)
	os.Exit(1)
}

func must[T any](v T, err error) T {
	if err != nil {
		fail("%v", err)
	}
	return v
}

func loadCases(path string) Cases {
	var c Cases
	if err := json.Unmarshal(must(os.ReadFile(path)), &c); err != nil {
		fail("reading %s: %v", path, err)
	}
	if len(c.Contexts) == 0 || len(c.Contexts) != len(c.Expected) {
		fail("%s: %d contexts for %d expected lines", path, len(c.Contexts), len(c.Expected))
	}
	return c
}

// normal turns any JSON-like value into what encoding/json would decode, so
// values from protobuf and from the offline JSON compare with DeepEqual.
func normal(v any) any {
	var out any
	if err := json.Unmarshal(must(json.Marshal(v)), &out); err != nil {
		fail("normalising %v: %v", v, err)
	}
	return out
}

func pbValue(v *structpb.Value) any {
	return normal(v.AsInterface())
}

func checkAssignment(what string, got *pb.AssignResponse, key string, want Assignment, version string) {
	wantReason := "REASON_" + strings.ToUpper(want.Reason)
	if got.GetExperiment() != key || got.GetVariant() != want.Variant || got.GetEnrolled() != want.Enrolled ||
		got.GetReason().String() != wantReason || got.GetEpoch() != want.Epoch ||
		got.GetSaltFingerprint() != want.SaltFingerprint || got.GetConfigVersion() != version ||
		!reflect.DeepEqual(pbValue(got.GetValue()), normal(want.Value)) {
		fail("%s %s: got %v, want %+v (version %s, reason %s)", what, key, got, want, version, wantReason)
	}
}

// checkAPI runs every cohortd.v1 call against the offline answers.
func checkAPI(name string, client pb.AssignmentClient, cases Cases) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, c := range cases.Contexts {
		want := cases.Expected[i]
		sctx := must(structpb.NewStruct(c))
		all := must(client.AssignAll(ctx, &pb.AssignAllRequest{Context: sctx}))
		if all.GetConfigVersion() != want.Version || len(all.GetAssignments()) != len(want.Assignments) {
			fail("%s AssignAll %v: version %s with %d assignments, want %s with %d",
				name, c, all.GetConfigVersion(), len(all.GetAssignments()), want.Version, len(want.Assignments))
		}
		for _, a := range all.GetAssignments() {
			w, ok := want.Assignments[a.GetExperiment()]
			if !ok {
				fail("%s AssignAll %v: unexpected experiment %s", name, c, a.GetExperiment())
			}
			checkAssignment(name+" AssignAll", a, a.GetExperiment(), w, want.Version)
		}
		for key, w := range want.Assignments {
			got := must(client.Assign(ctx, &pb.AssignRequest{Experiment: key, Context: sctx}))
			checkAssignment(name+" Assign", got, key, w, want.Version)
			ex := must(client.Explain(ctx, &pb.AssignRequest{Experiment: key, Context: sctx}))
			checkAssignment(name+" Explain", ex.GetAssignment(), key, w, want.Version)
			if len(ex.GetSteps()) == 0 {
				fail("%s Explain %s: no steps", name, key)
			}
		}
	}
	_, err := client.Assign(ctx, &pb.AssignRequest{Experiment: "no-such-flag", Context: must(structpb.NewStruct(cases.Contexts[0]))})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "no-such-flag") {
		fail("%s Assign unknown experiment: got %v, want NotFound naming it", name, err)
	}
}

func details[T any](d openfeature.GenericEvaluationDetails[T], err error) (T, string, string, string) {
	return d.Value, d.Variant, string(d.Reason), string(d.ErrorCode)
}

// checkOpenFeature evaluates every flag for every context with a targeting key
// through the flagd provider and compares value and variant with the offline answers.
func checkOpenFeature(name string, client *openfeature.Client, cases Cases) {
	ctx := context.Background()
	n := 0
	for i, c := range cases.Contexts {
		tk, ok := c["targetingKey"].(string)
		if !ok {
			continue
		}
		attrs := map[string]any{}
		for k, v := range c {
			if k != "targetingKey" {
				attrs[k] = v
			}
		}
		ec := openfeature.NewEvaluationContext(tk, attrs)
		keys := make([]string, 0, len(cases.Expected[i].Assignments))
		for k := range cases.Expected[i].Assignments {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, key := range keys {
			want := cases.Expected[i].Assignments[key]
			var value any
			var variant, reason, code string
			switch w := want.Value.(type) {
			case bool:
				value, variant, reason, code = details(client.BooleanValueDetails(ctx, key, !w, ec))
			case string:
				value, variant, reason, code = details(client.StringValueDetails(ctx, key, "fallback", ec))
			case float64:
				value, variant, reason, code = details(client.FloatValueDetails(ctx, key, -1, ec))
			default:
				value, variant, reason, code = details(client.ObjectValueDetails(ctx, key, nil, ec))
			}
			if code != "" || variant != want.Variant || !reflect.DeepEqual(normal(value), normal(want.Value)) {
				fail("%s OpenFeature %s %v: got value %v variant %q reason %s error %q, want %v variant %q",
					name, key, c, value, variant, reason, code, want.Value, want.Variant)
			}
			// The provider's cache stays on: with it off, go-sdk-contrib 0.6.0 drops
			// configuration_change events (handleConfigurationChangeEvent returns
			// first thing), so the change below would never be seen. Cached STATIC
			// answers then read CACHED.
			if want.Reason == "split" && reason != "SPLIT" && reason != "STATIC" && reason != "CACHED" {
				fail("%s OpenFeature %s %v: reason %s for a split assignment", name, key, c, reason)
			}
			n++
		}
	}
	if n == 0 {
		fail("%s OpenFeature: no context with a targetingKey to check", name)
	}
	ec := openfeature.NewEvaluationContext("user-1", nil)
	v, _, reason, code := details(client.StringValueDetails(ctx, "no-such-flag", "fallback", ec))
	if v != "fallback" || code != "FLAG_NOT_FOUND" || reason != "ERROR" {
		fail("%s OpenFeature unknown flag: got %q %s %s, want the default with FLAG_NOT_FOUND", name, v, reason, code)
	}
	// A string flag read as a boolean.
	for key, a := range cases.Expected[0].Assignments {
		if _, ok := a.Value.(string); ok {
			b, _, _, code := details(client.BooleanValueDetails(ctx, key, true, ec))
			if !b || code != "TYPE_MISMATCH" {
				fail("%s OpenFeature %s as boolean: got %v %s, want the default with TYPE_MISMATCH", name, key, b, code)
			}
			break
		}
	}
}

// checkFlagd evaluates every flag for every context with a targeting key over
// raw flagd.evaluation.v1 gRPC (generated from proto/flagd) and compares value
// and variant with the offline answers, then the protocol's error codes.
func checkFlagd(name string, c fpb.ServiceClient, cases Cases) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	for i, cx := range cases.Contexts {
		if _, ok := cx["targetingKey"].(string); !ok {
			continue
		}
		ec := must(structpb.NewStruct(cx))
		for key, want := range cases.Expected[i].Assignments {
			var value any
			var variant, reason string
			switch want.Value.(type) {
			case bool:
				r := must(c.ResolveBoolean(ctx, &fpb.ResolveBooleanRequest{FlagKey: key, Context: ec}))
				value, variant, reason = r.GetValue(), r.GetVariant(), r.GetReason()
			case string:
				r := must(c.ResolveString(ctx, &fpb.ResolveStringRequest{FlagKey: key, Context: ec}))
				value, variant, reason = r.GetValue(), r.GetVariant(), r.GetReason()
			case float64:
				r := must(c.ResolveFloat(ctx, &fpb.ResolveFloatRequest{FlagKey: key, Context: ec}))
				value, variant, reason = r.GetValue(), r.GetVariant(), r.GetReason()
			default:
				r := must(c.ResolveObject(ctx, &fpb.ResolveObjectRequest{FlagKey: key, Context: ec}))
				value, variant, reason = r.GetValue().AsMap(), r.GetVariant(), r.GetReason()
			}
			if variant != want.Variant || !reflect.DeepEqual(normal(value), normal(want.Value)) {
				fail("%s flagd %s %v: got %v variant %q reason %s, want %v variant %q",
					name, key, cx, value, variant, reason, want.Value, want.Variant)
			}
			// The provider's cache stays on: with it off, go-sdk-contrib 0.6.0 drops
			// configuration_change events (handleConfigurationChangeEvent returns
			// first thing), so the change below would never be seen. Cached STATIC
			// answers then read CACHED.
			if want.Reason == "split" && reason != "SPLIT" && reason != "STATIC" && reason != "CACHED" {
				fail("%s flagd %s %v: reason %s for a split assignment", name, key, cx, reason)
			}
			n++
		}
	}
	if n == 0 {
		fail("%s flagd: no context with a targetingKey to check", name)
	}
	ec := must(structpb.NewStruct(map[string]any{"targetingKey": "user-1"}))
	_, err := c.ResolveString(ctx, &fpb.ResolveStringRequest{FlagKey: "no-such-flag", Context: ec})
	if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "FLAG_NOT_FOUND") {
		fail("%s flagd unknown flag: got %v, want NotFound with FLAG_NOT_FOUND", name, err)
	}
	for key, a := range cases.Expected[0].Assignments {
		if _, ok := a.Value.(string); ok {
			_, err := c.ResolveBoolean(ctx, &fpb.ResolveBooleanRequest{FlagKey: key, Context: ec})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "TYPE_MISMATCH") {
				fail("%s flagd %s as boolean: got %v, want InvalidArgument with TYPE_MISMATCH", name, key, err)
			}
			break
		}
	}
}

// flagdEvents opens EventStream, checks provider_ready and forwards the rest.
func flagdEvents(name string, c fpb.ServiceClient) <-chan *fpb.EventStreamResponse {
	stream := must(c.EventStream(context.Background(), &fpb.EventStreamRequest{}))
	if first := must(stream.Recv()); first.GetType() != "provider_ready" {
		fail("%s flagd EventStream: first event %v, want provider_ready", name, first)
	}
	events := make(chan *fpb.EventStreamResponse, 16)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	return events
}

func waitConfigChange(name string, events <-chan *fpb.EventStreamResponse, deadline <-chan time.Time) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				fail("%s flagd EventStream ended before configuration_change", name)
			}
			if ev.GetType() == "configuration_change" {
				return
			}
		case <-deadline:
			fail("%s flagd EventStream: no configuration_change", name)
		}
	}
}

// watch opens a Watch stream, checks its initial event and forwards the rest.
func watch(name string, client pb.AssignmentClient, version string) <-chan *pb.WatchEvent {
	stream := must(client.Watch(context.Background(), &pb.WatchRequest{}))
	first := must(stream.Recv())
	if !first.GetInitial() || first.GetConfigVersion() != version {
		fail("%s Watch: first event %v, want initial with version %s", name, first, version)
	}
	events := make(chan *pb.WatchEvent, 16)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	return events
}

func waitVersion(name string, events <-chan *pb.WatchEvent, version string, deadline <-chan time.Time) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				fail("%s Watch: stream ended before version %s", name, version)
			}
			if ev.GetConfigVersion() == version {
				if len(ev.GetChanged())+len(ev.GetAdded())+len(ev.GetRemoved()) == 0 && !ev.GetInitial() {
					fail("%s Watch: event for %s lists no change", name, version)
				}
				return
			}
		case <-deadline:
			fail("%s Watch: no event for version %s", name, version)
		}
	}
}

func main() {
	tcp := flag.String("tcp", "", "cohortd gRPC address HOST:PORT")
	unix := flag.String("unix", "", "cohortd Unix socket path")
	casesPath := flag.String("cases", "", "cases JSON written by the driver")
	connectAddr := flag.String("openfeature", "",
		"also check the OpenFeature flagd provider (RPC mode) against this HOST:PORT, cohortd's "+
			"Connect protocol listener (--ofrep-listen): the provider is a connect-go client")
	flag.Parse()
	cases := loadCases(*casesPath)
	if _, _, err := net.SplitHostPort(*tcp); err != nil || *unix == "" {
		fail("usage: -tcp HOST:PORT -unix PATH -cases FILE [-openfeature HOST:PORT]")
	}

	type transport struct {
		name   string
		client pb.AssignmentClient
		flagd  fpb.ServiceClient
		watch  <-chan *pb.WatchEvent
		events <-chan *fpb.EventStreamResponse
	}
	var transports []*transport
	for _, t := range []struct{ name, target string }{{"tcp", *tcp}, {"unix", "unix://" + *unix}} {
		conn := must(grpc.NewClient(t.target, grpc.WithTransportCredentials(insecure.NewCredentials())))
		tr := &transport{name: t.name, client: pb.NewAssignmentClient(conn), flagd: fpb.NewServiceClient(conn)}
		tr.watch = watch(tr.name, tr.client, cases.Expected[0].Version)
		tr.events = flagdEvents(tr.name, tr.flagd)
		checkAPI(tr.name, tr.client, cases)
		checkFlagd(tr.name, tr.flagd, cases)
		transports = append(transports, tr)
	}

	var of *openfeature.Client
	changed := make(chan []string, 16)
	if *connectAddr != "" {
		cHost, cPort, err := net.SplitHostPort(*connectAddr)
		if err != nil {
			fail("-openfeature %q: %v", *connectAddr, err)
		}
		var cPortNum uint16
		fmt.Sscan(cPort, &cPortNum)
		onChange := func(d openfeature.EventDetails) { changed <- d.FlagChanges }
		openfeature.AddHandler(openfeature.ProviderConfigChange, &onChange)
		provider := must(flagd.NewProvider(flagd.WithRPCResolver(), flagd.WithHost(cHost), flagd.WithPort(cPortNum),
			flagd.WithDeadline(5000)))
		if err := openfeature.SetProviderAndWait(provider); err != nil {
			fail("flagd provider: %v", err)
		}
		of = openfeature.NewClient("cohortd-go-client")
		checkOpenFeature("flagd-provider-rpc", of, cases)
	}

	fmt.Println("READY-FOR-CHANGE")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	path, ok := strings.CutPrefix(strings.TrimSpace(line), "CHANGED ")
	if !ok {
		fail("driver said %q, want CHANGED <cases.json>", line)
	}
	next := loadCases(path)
	deadline := time.After(30 * time.Second)
	for _, t := range transports {
		waitVersion(t.name, t.watch, next.Expected[0].Version, deadline)
		waitConfigChange(t.name, t.events, deadline)
		checkAPI(t.name+" after change", t.client, next)
		checkFlagd(t.name+" after change", t.flagd, next)
	}
	if of != nil {
		select {
		case flags := <-changed:
			if len(flags) == 0 {
				fail("PROVIDER_CONFIGURATION_CHANGED names no flag")
			}
		case <-deadline:
			fail("no PROVIDER_CONFIGURATION_CHANGED event")
		}
		checkOpenFeature("flagd-provider-rpc after change", of, next)
		openfeature.Shutdown()
	}
	fmt.Println("OK")
}
