// Command ofrep-client checks a running `cohortd serve` through the OpenFeature
// Go SDK with the OFREP provider (go-sdk-contrib/providers/ofrep), the way a Go
// service that cannot use the flagd provider's RPC mode (Connect over HTTP/1.1,
// docs/clients.md) would call it:
//
//	ofrep-client -url http://127.0.0.1:PORT -cases cases.json
//
// For every context with a targeting key and every flag it evaluates the flag
// with the type of its offline value (boolean, integer, float, string, object)
// and compares value, variant, reason and metadata with what `cohortd assign
// --all` printed offline; a context without a targeting key must get the
// caller's default with TARGETING_KEY_MISSING for split experiments. Then
// FLAG_NOT_FOUND and two type mismatches (a string read as a boolean, a float
// read as an integer), each returning the caller's default.
// Driven over stdio: prints READY-FOR-CHANGE, reads `CHANGED <cases.json>` once
// the driver rewrote the config, and polls (the OFREP provider has no change
// events) until every answer matches the new cases, then prints OK.
// Any mismatch is printed on stderr and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"sort"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"

	"cohortd.test/clients/internal/cases"
)

// result is one evaluation, whatever its type.
type result struct {
	value    any
	variant  string
	reason   string
	code     string
	metadata map[string]any
}

func of[T any](d openfeature.GenericEvaluationDetails[T], _ error) result {
	return result{d.Value, d.Variant, string(d.Reason), string(d.ErrorCode), d.FlagMetadata}
}

// evaluate reads key with the type of want (integral numbers as integers) and
// returns the result and the caller's default it passed.
func evaluate(c *openfeature.Client, key string, want any, ec openfeature.EvaluationContext) (result, any) {
	ctx := context.Background()
	switch w := want.(type) {
	case bool:
		return of(c.BooleanValueDetails(ctx, key, !w, ec)), !w
	case string:
		return of(c.StringValueDetails(ctx, key, "caller-default", ec)), "caller-default"
	case float64:
		if w == math.Trunc(w) {
			return of(c.IntValueDetails(ctx, key, -7, ec)), int64(-7)
		}
		return of(c.FloatValueDetails(ctx, key, -7.5, ec)), -7.5
	default:
		def := map[string]any{"caller": "default"}
		return of(c.ObjectValueDetails(ctx, key, def, ec)), def
	}
}

func evalContext(c map[string]any) openfeature.EvaluationContext {
	tk, _ := c["targetingKey"].(string)
	attrs := map[string]any{}
	for k, v := range c {
		if k != "targetingKey" {
			attrs[k] = v
		}
	}
	return openfeature.NewEvaluationContext(tk, attrs)
}

// check evaluates every flag for every context and returns the first mismatch
// ("" when everything matches) and how many evaluations it compared.
func check(c *openfeature.Client, cs cases.Cases) (string, int) {
	n := 0
	for i, cx := range cs.Contexts {
		ec := evalContext(cx)
		keys := make([]string, 0, len(cs.Expected[i].Assignments))
		for k := range cs.Expected[i].Assignments {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, key := range keys {
			want := cs.Expected[i].Assignments[key]
			reason := cs.OpenFeatureReason(key, want)
			got, def := evaluate(c, key, want.Value, ec)
			n++
			bad := func(why string) string {
				return fmt.Sprintf("%s %v: %s: got value %v variant %q reason %s error %q metadata %v; "+
					"offline: %+v, so reason %s", key, cx, why, got.value, got.variant, got.reason, got.code,
					got.metadata, want, reason)
			}
			switch reason {
			case "ERROR":
				if got.code != "TARGETING_KEY_MISSING" || got.reason != "ERROR" ||
					!reflect.DeepEqual(cases.Normal(got.value), cases.Normal(def)) {
					return bad("want the caller's default with TARGETING_KEY_MISSING"), n
				}
				continue
			case "DISABLED":
				// The OFREP provider hands back the caller's default for DISABLED.
				if got.code != "" || got.reason != reason || got.variant != want.Variant ||
					!reflect.DeepEqual(cases.Normal(got.value), cases.Normal(def)) {
					return bad("want DISABLED with the caller's default"), n
				}
			default:
				if got.code != "" || got.reason != reason || got.variant != want.Variant ||
					!reflect.DeepEqual(cases.Normal(got.value), cases.Normal(want.Value)) {
					return bad("value, variant or reason differs"), n
				}
			}
			m := got.metadata
			if m["enrolled"] != want.Enrolled || m["cohortdReason"] != want.Reason ||
				m["saltFingerprint"] != want.SaltFingerprint || m["epoch"] != float64(want.Epoch) {
				return bad("metadata differs from the offline assignment"), n
			}
		}
	}
	return "", n
}

// checkErrors: an unknown flag and type mismatches give the caller's default.
func checkErrors(c *openfeature.Client, cs cases.Cases) {
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("user-1", nil)
	r := of(c.StringValueDetails(ctx, "no-such-flag", "caller-default", ec))
	if r.value != "caller-default" || r.code != "FLAG_NOT_FOUND" || r.reason != "ERROR" {
		cases.Fail("unknown flag: got %+v, want the caller's default with FLAG_NOT_FOUND", r)
	}
	// Served flags only: for DISABLED the provider returns the caller's default
	// before it looks at the type. Sorted, so every run checks the same flags.
	var str, frac string
	keys := make([]string, 0, len(cs.Expected[0].Assignments))
	for key := range cs.Expected[0].Assignments {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		a := cs.Expected[0].Assignments[key]
		if r := cs.OpenFeatureReason(key, a); r == "DISABLED" || r == "ERROR" {
			continue
		}
		switch v := a.Value.(type) {
		case string:
			str = key
		case float64:
			if v != math.Trunc(v) {
				frac = key
			}
		}
	}
	if str == "" || frac == "" {
		cases.Fail("the config needs a string flag and a fractional number flag for the type mismatch checks")
	}
	if r := of(c.BooleanValueDetails(ctx, str, true, ec)); r.value != true || r.code != "TYPE_MISMATCH" || r.reason != "ERROR" {
		cases.Fail("%s (a string) as boolean: got %+v, want the caller's default with TYPE_MISMATCH", str, r)
	}
	if r := of(c.IntValueDetails(ctx, frac, 42, ec)); r.value != int64(42) || r.code != "TYPE_MISMATCH" {
		cases.Fail("%s (a fraction) as integer: got %+v, want the caller's default with TYPE_MISMATCH", frac, r)
	}
}

func main() {
	url := flag.String("url", "", "cohortd OFREP base URL, http://HOST:PORT")
	casesPath := flag.String("cases", "", "cases JSON written by the driver")
	flag.Parse()
	if *url == "" || *casesPath == "" {
		cases.Fail("usage: -url http://HOST:PORT -cases FILE")
	}
	before := cases.Load(*casesPath)
	provider := ofrep.NewProvider(*url, ofrep.WithClient(&http.Client{Timeout: 5 * time.Second}))
	if err := openfeature.SetProviderAndWait(provider); err != nil {
		cases.Fail("OFREP provider: %v", err)
	}
	client := openfeature.NewClient("cohortd-ofrep-client")
	if msg, n := check(client, before); msg != "" {
		cases.Fail("%s", msg)
	} else if n == 0 {
		cases.Fail("no evaluation compared")
	}
	checkErrors(client, before)

	after := cases.AwaitChange()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msg, _ := check(client, after)
		if msg == "" {
			break
		}
		if time.Now().After(deadline) {
			cases.Fail("after the change, for 30s: %s", msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkErrors(client, after)
	openfeature.Shutdown()
	fmt.Println("OK")
}
