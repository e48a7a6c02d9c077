//go:build cgo

package telemetry

// Fuzzing the JSON that Capture builds and hands to C: whatever checkEvent accepts,
// appendEvent must encode as valid JSON that says what the caller gave (name, property
// names, text), and the library must accept it over the C ABI. `go test` runs the seeds;
// `go test -run '^$' -fuzz FuzzEventJSONCrossesToC ./telemetry` searches for more.

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// asSent is s as appendString writes it: each byte that is not UTF-8 becomes U+FFFD.
func asSent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// nest wraps v in depth levels of objects and arrays, alternating.
func nest(depth int, v any) any {
	for i := 0; i < depth; i++ {
		if i%2 == 0 {
			v = map[string]any{"level": v}
		} else {
			v = []any{v}
		}
	}
	return v
}

func FuzzEventJSONCrossesToC(f *testing.F) {
	f.Add("collection_add", "embedding_function", "DefaultEmbeddingFunction", int64(42), 1.5, "12.5", uint8(2), uint8(0))
	f.Add("", "", "", int64(0), 0.0, "", uint8(0), uint8(1))
	f.Add("e\x00vent", "k\"ey\\", "\xff\xfe line\nbreak", int64(math.MinInt64), math.Inf(1), "1e999", uint8(120), uint8(3))
	f.Add(strings.Repeat("x", 300), "ключ", "ü € 𝄞 \u2028", int64(-1), math.NaN(), "-0.5e-3", uint8(99), uint8(7))
	f.Add("  ", "$set", "<script>", int64(1), -0.0, "01", uint8(100), uint8(5))

	c, err := New(WithProduct("gofuzz", "1.0.0"), WithSink(SinkMemory), WithEnvironment(map[string]string{}))
	if err != nil {
		f.Fatalf("New: %v", err)
	}
	f.Cleanup(func() { _ = c.Close(context.Background()) })
	if !c.Enabled() {
		f.Fatalf("the fuzz client is off: %s", c.Decision())
	}

	f.Fuzz(func(t *testing.T, name, key, text string, n int64, x float64, number string, depth, kind uint8) {
		e := Event{Name: name, Properties: map[string]any{
			"n":      n,
			"x":      x,
			"nested": nest(int(depth), text),
		}}
		if kind&1 == 1 {
			e.Properties["number"] = json.Number(number)
		}
		var value any = text
		switch (kind >> 1) % 4 {
		case 1:
			value = Safe(text)
		case 2:
			value = Exact(text)
		case 3:
			value = Text(text)
		}
		e.Properties["p:"+key] = value

		checked := checkEvent(&e)
		encoded, appendErr := appendEvent([]byte{'['}, &e)
		if checked != nil {
			return // refused at Capture, with a reason: nothing crosses
		}
		if appendErr != nil {
			t.Fatalf("checkEvent accepted what appendEvent refuses: %v", appendErr)
		}
		encoded = append(encoded, ']')
		var decoded []struct {
			Event      string                     `json:"event"`
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(encoded, &decoded); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, encoded)
		}
		if decoded[0].Event != name {
			t.Fatalf("event name %q arrived as %q", name, decoded[0].Event)
		}
		if len(decoded[0].Properties) != len(e.Properties) {
			t.Fatalf("%d properties arrived of %d", len(decoded[0].Properties), len(e.Properties))
		}
		var got string
		if err := json.Unmarshal(decoded[0].Properties[asSent("p:"+key)], &got); err != nil {
			t.Fatalf("property %q: %v\n%s", "p:"+key, err, encoded)
		}
		if got != asSent(text) {
			t.Fatalf("text %q arrived as %q", text, got)
		}
		if err := cCaptureBatch(c.c.h, encoded); err != nil {
			t.Fatalf("Go accepted the event but the library refused its JSON: %v\n%s", err, encoded)
		}
	})
}
