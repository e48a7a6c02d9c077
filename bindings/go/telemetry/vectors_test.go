//go:build cgo

package telemetry

// The shared test vectors in tests/vectors, run through this package and the C ABI so Go
// agrees with Rust and Python on consent, anonymization and batching.

import (
	"context"
	"encoding/json"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func loadVectors(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "tests", "vectors", name))
	if err != nil {
		t.Fatalf("the shared vectors must be there: %v", err)
	}
	var doc map[string]any
	if err := decodeExact(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// sameJSON compares decoded JSON (numbers as json.Number) exactly: an integer never
// equals a float, and numbers compare by value, not by spelling (1e2 is 100.0).
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		xi, yi := isInteger(x), isInteger(y)
		if xi != yi {
			return false
		}
		if xi {
			bx, _ := new(big.Int).SetString(string(x), 10)
			by, _ := new(big.Int).SetString(string(y), 10)
			return bx != nil && by != nil && bx.Cmp(by) == 0
		}
		fx, ex := strconv.ParseFloat(string(x), 64)
		fy, ey := strconv.ParseFloat(string(y), 64)
		return ex == nil && ey == nil && fx == fy
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a, b)
	}
}

func isInteger(n json.Number) bool { return !strings.ContainsAny(string(n), ".eE") }

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAnonymizeVectors(t *testing.T) {
	doc := loadVectors(t, "anonymize.json")
	cases := doc["cases"].([]any)
	failed := 0
	for _, raw := range cases {
		c := raw.(map[string]any)
		names := doc["local_names"]
		if own, ok := c["local_names"]; ok {
			names = own
		}
		req, _ := json.Marshal(map[string]any{
			"secret_hex":  doc["secret_hex"],
			"precision":   c["precision"],
			"local_names": names,
			"kind":        c["kind"],
			"value":       c["input"],
		})
		text, err := anonymize(req)
		if err != nil {
			t.Errorf("%s: %v", c["name"], err)
			failed++
			continue
		}
		var got map[string]any
		if err := decodeExact(text, &got); err != nil {
			t.Fatal(err)
		}
		if c["dropped"] == true {
			if got["dropped"] != true {
				t.Errorf("%s: expected dropped, got %s", c["name"], text)
				failed++
			}
			continue
		}
		if _, dropped := got["dropped"]; dropped || !sameJSON(got["value"], c["expect"]) {
			t.Errorf("%s\n  input:    %s\n  expected: %s\n  actual:   %s", c["name"], show(c["input"]), show(c["expect"]), text)
			failed++
		}
	}
	if len(cases) < 50 {
		t.Errorf("only %d anonymization vectors", len(cases))
	}
	t.Logf("%d anonymization vectors, %d failed", len(cases), failed)
}

// listing is every path under root, to prove that resolving consent creates nothing.
func listing(t *testing.T, root string) []string {
	var paths []string
	_ = filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	return paths
}

func TestConsentVectors(t *testing.T) {
	doc := loadVectors(t, "consent.json")
	cases := doc["cases"].([]any)
	for _, raw := range cases {
		c := raw.(map[string]any)
		t.Run(c["name"].(string), func(t *testing.T) { runConsentCase(t, c) })
	}
	if len(cases) < 50 {
		t.Errorf("only %d consent vectors", len(cases))
	}
}

func runConsentCase(t *testing.T, c map[string]any) {
	root := t.TempDir()
	sub := func(s string) string { return strings.ReplaceAll(s, "{root}", root) }
	work := filepath.Join(root, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	for rel, spec := range c["files"].(map[string]any) {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch s := spec.(type) {
		case string:
			err = os.WriteFile(path, []byte(s), 0o644)
		case map[string]any:
			if s["directory"] == true {
				err = os.MkdirAll(path, 0o755)
			} else {
				err = os.Symlink(sub(s["symlink"].(string)), path)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"HOME": filepath.Join(root, "home")}
	for k, v := range c["env"].(map[string]any) {
		if v == nil {
			delete(env, k)
		} else {
			env[k] = sub(v.(string))
		}
	}
	profile, _ := json.Marshal(c["profile"])
	inputs := c["inputs"].(map[string]any)
	opts := []Option{
		WithProduct("vector", "1"),
		WithSink(SinkMemory),
		WithProfile(Profile{json.RawMessage(profile)}),
		WithEnvironment(env),
		WithWorkingDir(work),
		WithConfigDir(work),
		WithMode(Mode(inputs["mode"].(string))),
	}
	if e, ok := inputs["explicit"].(bool); ok {
		opts = append(opts, WithExplicit(e))
	}
	var args []string
	for _, a := range inputs["args"].([]any) {
		args = append(args, a.(string))
	}
	opts = append(opts, WithArgs(args))

	before := listing(t, root)
	client, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	if after := listing(t, root); !reflect.DeepEqual(before, after) {
		t.Errorf("resolving created files: before %v, after %v", before, after)
	}
	d := client.Decision()
	expect := c["expect"].(map[string]any)
	if d.Enabled != expect["enabled"].(bool) || client.Enabled() != d.Enabled {
		t.Errorf("enabled %v (Enabled() %v)\n%s", d.Enabled, client.Enabled(), d)
	}
	if want, ok := expect["decided_by"].(map[string]any); ok {
		if d.DecidedBy == nil || d.DecidedBy.Kind != want["kind"] || d.DecidedBy.Name != sub(want["name"].(string)) {
			t.Errorf("decided by %+v, want %v\n%s", d.DecidedBy, want, d)
		}
	} else if d.DecidedBy != nil {
		t.Errorf("decided by %+v, want none", d.DecidedBy)
	}
	if n, _ := expect["warnings"].(json.Number).Int64(); int(n) != len(d.Warnings) {
		t.Errorf("%d warnings, want %d\n%s", len(d.Warnings), n, d)
	}
	if needles, ok := expect["warnings_contain"].([]any); ok {
		for _, needle := range needles {
			found := false
			for _, w := range d.Warnings {
				found = found || strings.Contains(w, sub(needle.(string)))
			}
			if !found {
				t.Errorf("no warning contains %q\n%s", needle, d)
			}
		}
	}
	if len(d.Sources) == 0 || d.Sources[len(d.Sources)-1].Kind != "default" {
		t.Errorf("the default is not the last source\n%s", d)
	}
	if !strings.HasPrefix(d.String(), "telemetry is ") {
		t.Errorf("explanation %q", d.String())
	}
}

// TestBatchingVectors compares, per case, the concatenation of every step's emits with what
// a memory-sink client delivers: offers are captured in order, a drain step is a Flush.
func TestBatchingVectors(t *testing.T) {
	doc := loadVectors(t, "batching.json")
	cases := doc["cases"].([]any)
	for _, raw := range cases {
		c := raw.(map[string]any)
		t.Run(c["name"].(string), func(t *testing.T) {
			client := memoryClient(t,
				WithIdentity("00000000-0000-4000-8000-000000000001", strings.Repeat("ab", 32)),
				WithFlushInterval(time.Hour))
			var want []any
			for _, s := range c["steps"].([]any) {
				step := s.(map[string]any)
				if offer, ok := step["offer"].(map[string]any); ok {
					if err := client.CaptureEvent(eventFromVector(offer)); err != nil {
						t.Fatal(err)
					}
				} else if err := client.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
					t.Fatal(err)
				}
				want = append(want, step["emits"].([]any)...)
			}
			got := mustEvents(t, client)
			context := contextKeys(t, client)
			var gotEvents []any
			for _, e := range got {
				p := map[string]any{}
				for k, v := range props(e) {
					if !context[k] {
						p[k] = v
					}
				}
				gotEvents = append(gotEvents, map[string]any{"event": e["event"], "properties": p})
			}
			if !sameJSON(any(gotEvents), any(want)) {
				t.Errorf("delivered %s\nwant      %s", show(gotEvents), show(want))
			}
		})
	}
	if len(cases) < 5 {
		t.Errorf("only %d batching vectors", len(cases))
	}
}

// eventFromVector turns the JSON form of an event into an Event: declared kinds become
// Property wrappers.
func eventFromVector(v map[string]any) Event {
	e := Event{Name: v["event"].(string), Properties: map[string]any{}}
	kinds, _ := v["kinds"].(map[string]any)
	for k, val := range v["properties"].(map[string]any) {
		if kind, ok := kinds[k].(string); ok {
			val = Property{Kind(kind), val}
		}
		e.Properties[k] = val
	}
	if b, ok := v["batch"].(map[string]any); ok {
		max, _ := b["max_size"].(json.Number).Int64()
		rule := &BatchRule{Key: b["key"].(string), MaxSize: uint32(max)}
		for _, s := range b["sum"].([]any) {
			rule.Sum = append(rule.Sum, s.(string))
		}
		e.Batch = rule
	}
	return e
}

// contextKeys are the properties the client adds to every event, read from a preview of
// an event without properties.
func contextKeys(t *testing.T, c *Client) map[string]bool {
	item, err := c.Preview(Event{Name: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for k := range props(item) {
		keys[k] = true
	}
	return keys
}

func TestSameJSONIsExact(t *testing.T) {
	var a, b any
	for _, tc := range []struct {
		x, y string
		same bool
	}{
		{"1", "1", true}, {"1", "1.0", false}, {"100.0", "1e2", true},
		{"123456000", "123456000", true}, {"-0.5", "-0.50", true},
		{`{"a":[1,"x"]}`, `{"a":[1,"x"]}`, true}, {`{"a":1}`, `{"a":1,"b":2}`, false},
	} {
		_ = decodeExact([]byte(tc.x), &a)
		_ = decodeExact([]byte(tc.y), &b)
		if sameJSON(a, b) != tc.same {
			t.Errorf("sameJSON(%s, %s) != %v", tc.x, tc.y, tc.same)
		}
	}
}
