// Package cases holds what the Go interop programs share: the cases file the
// Rust drivers write (contexts and, for each, the line `cohortd assign --all`
// printed for it offline), the stdio exchange with the driver, and failing
// loudly. One place, so every program reads the same format the same way.
package cases

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
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

// Cases pairs each context with its offline answer. PlainFlags lists the
// experiments that are plain flags (one live variant, served to everyone), whose
// OpenFeature reason is STATIC rather than SPLIT.
type Cases struct {
	Contexts   []map[string]any `json:"contexts"`
	Expected   []Expected       `json:"expected"`
	PlainFlags []string         `json:"plainFlags"`
}

// Fail prints a FAILED line on stderr and exits 1.
func Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAILED "+format+"\n", args...)
	os.Exit(1)
}

// Must returns v, or fails with err.
func Must[T any](v T, err error) T {
	if err != nil {
		Fail("%v", err)
	}
	return v
}

// Load reads a cases file and checks it pairs every context with an answer.
func Load(path string) Cases {
	var c Cases
	if err := json.Unmarshal(Must(os.ReadFile(path)), &c); err != nil {
		Fail("reading %s: %v", path, err)
	}
	if len(c.Contexts) == 0 || len(c.Contexts) != len(c.Expected) {
		Fail("%s: %d contexts for %d expected lines", path, len(c.Contexts), len(c.Expected))
	}
	return c
}

// Normal turns any JSON-like value into what encoding/json would decode, so
// values from protobuf, from providers and from the offline JSON compare with
// reflect.DeepEqual.
func Normal(v any) any {
	var out any
	if err := json.Unmarshal(Must(json.Marshal(v)), &out); err != nil {
		Fail("normalising %v: %v", v, err)
	}
	return out
}

// OpenFeatureReason is the reason an OpenFeature provider reports for an
// offline answer, as src/engine/resolve.rs maps cohortd's reasons (empty for
// an error).
func (c Cases) OpenFeatureReason(key string, a Assignment) string {
	switch a.Reason {
	case "split", "sticky":
		for _, p := range c.PlainFlags {
			if p == key {
				return "STATIC"
			}
		}
		return "SPLIT"
	case "winner":
		return "STATIC"
	case "disabled":
		return "DISABLED"
	case "missing_unit":
		for _, p := range c.PlainFlags {
			if p == key {
				return "STATIC"
			}
		}
		return "ERROR"
	default: // targeting_miss, holdout, not_in_layer, not_in_traffic
		return "DEFAULT"
	}
}

// AwaitChange prints READY-FOR-CHANGE, waits for the driver's
// `CHANGED <cases.json>` and loads the new cases.
func AwaitChange() Cases {
	fmt.Println("READY-FOR-CHANGE")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	path, ok := strings.CutPrefix(strings.TrimSpace(line), "CHANGED ")
	if !ok {
		Fail("driver said %q, want CHANGED <cases.json>", line)
	}
	return Load(path)
}
