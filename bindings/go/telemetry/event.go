package telemetry

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind declares how a property is anonymized. A property without one is treated by its
// type: strings are sent as keyed hashes, numbers rounded, booleans and nil kept.
type Kind string

// Property kinds (DESIGN.md, "Anonymization").
const (
	// KindSafe is sent as is: the integrator vouches that it is not private.
	KindSafe Kind = "safe"
	// KindHashed is sent only as its keyed hash.
	KindHashed Kind = "hashed"
	// KindExact keeps a number exact (counts that must add up).
	KindExact Kind = "exact"
	// KindNumber rounds a number to the profile's precision.
	KindNumber Kind = "number"
	// KindText is free text, scrubbed of e-mails, addresses, URLs, paths and names.
	KindText Kind = "text"
	// KindDropped is never sent.
	KindDropped Kind = "dropped"
)

// Property is a property value with a declared kind; use it as a value in the properties
// map:
//
//	client.Capture("collection_add", map[string]any{
//		"embedding_function": telemetry.Safe("default"),
//		"add_amount":         telemetry.Exact(20),
//		"collection":         "docs", // undeclared: sent as a keyed hash
//	})
type Property struct {
	Kind  Kind
	Value any
}

// Safe declares v safe to send as is (an enum-like label, a version, a flag).
func Safe(v any) Property { return Property{KindSafe, v} }

// Hashed declares that only v's keyed hash is sent.
func Hashed(v any) Property { return Property{KindHashed, v} }

// Exact declares a number that is sent exactly.
func Exact(v any) Property { return Property{KindExact, v} }

// Number declares a number rounded to the profile's precision.
func Number(v any) Property { return Property{KindNumber, v} }

// Text declares free text, scrubbed before it is sent.
func Text(v any) Property { return Property{KindText, v} }

// BatchRule merges events with the same Key into one, as Chroma does: the first is sent at
// once, later ones add up (the Sum properties and batch_size) until MaxSize of them, and
// partial batches go out at the flush interval and at Close.
type BatchRule struct {
	Key     string
	MaxSize uint32
	Sum     []string
}

// Event is an event with everything it can carry; Capture is the short form.
type Event struct {
	Name       string
	Properties map[string]any
	Batch      *BatchRule
}

// maxDepth bounds nesting in property values; a value that contains itself would
// otherwise recurse forever. The library's JSON parser has a similar limit.
const maxDepth = 100

func checkEvent(e *Event) error {
	if len(e.Name) > maxEventNameBytes {
		return newError(CodeInvalidEvent, "event name is %d bytes; at most %d", len(e.Name), maxEventNameBytes)
	}
	if strings.TrimSpace(e.Name) == "" {
		return newError(CodeInvalidEvent, "event name is empty")
	}
	if !utf8.ValidString(e.Name) {
		return newError(CodeInvalidUTF8, "event name %q is not valid UTF-8", e.Name)
	}
	if e.Batch != nil && e.Batch.Key == "" {
		return newError(CodeInvalidEvent, "event %s: batch key is empty", e.Name)
	}
	for k, v := range e.Properties {
		if p, ok := v.(Property); ok {
			switch p.Kind {
			case KindSafe, KindHashed, KindExact, KindNumber, KindText, KindDropped:
			default:
				return newError(CodeInvalidEvent, "property %s: unknown kind %q", k, p.Kind)
			}
			v = p.Value
		}
		if err := checkValue(v, 0); err != nil {
			return newError(CodeInvalidEvent, "property %s: %v", k, err)
		}
	}
	return nil
}

// checkValue makes sure appendValue will succeed, so Capture can report a bad value at
// once although the event is encoded later. Plain values cost a type switch.
func checkValue(v any, depth int) error {
	if depth > maxDepth {
		return errString("nested more than 100 levels deep")
	}
	switch x := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32,
		uint64, uintptr, float32, float64:
		return nil
	case json.Number:
		if !validNumber(string(x)) {
			return errString("json.Number " + strconv.Quote(string(x)) + " is not a number")
		}
		return nil
	case []any:
		for _, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		for _, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case Property:
		return errString("a Property may only be a top-level property value")
	default:
		_, err := json.Marshal(v)
		return err
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func validNumber(s string) bool {
	var f float64
	return s != "" && json.Unmarshal([]byte(s), &f) == nil && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
}

// appendEvent writes e in the JSON form the C ABI takes:
// {"event": ..., "properties": {...}, "kinds": {...}, "batch": {...}}.
// Map order does not matter: the library reads the properties into a map.
func appendEvent(b []byte, e *Event) ([]byte, error) {
	b = append(b, `{"event":`...)
	b = appendString(b, e.Name)
	b = append(b, `,"properties":{`...)
	declared := false
	first := true
	var err error
	for k, v := range e.Properties {
		if p, ok := v.(Property); ok {
			declared = true
			v = p.Value
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, v, 0); err != nil {
			return b, newError(CodeInvalidEvent, "event %s, property %s: %v", e.Name, k, err)
		}
	}
	b = append(b, '}')
	if declared {
		b = append(b, `,"kinds":{`...)
		first = true
		for k, v := range e.Properties {
			if p, ok := v.(Property); ok {
				if !first {
					b = append(b, ',')
				}
				first = false
				b = appendString(b, k)
				b = append(b, ':')
				b = appendString(b, string(p.Kind))
			}
		}
		b = append(b, '}')
	}
	if r := e.Batch; r != nil {
		b = append(b, `,"batch":{"key":`...)
		b = appendString(b, r.Key)
		b = append(b, `,"max_size":`...)
		b = strconv.AppendUint(b, uint64(r.MaxSize), 10)
		b = append(b, `,"sum":[`...)
		for i, s := range r.Sum {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, "]}"...)
	}
	return append(b, '}'), nil
}

// appendValue writes plain values directly (the common case, and the hot one) and falls
// back to encoding/json for anything else. NaN and infinities, which JSON cannot carry,
// are written as null: the library would send them as null anyway.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errString("nested more than 100 levels deep")
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case uintptr:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case float32:
		return appendFloat(b, float64(x), 32), nil
	case float64:
		return appendFloat(b, x, 64), nil
	case json.Number:
		if !validNumber(string(x)) {
			return b, errString("json.Number " + strconv.Quote(string(x)) + " is not a number")
		}
		return append(b, x...), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		b = append(b, '{')
		first := true
		for k, e := range x {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return b, err
		}
		return append(b, j...), nil
	}
}

// appendFloat writes a float as encoding/json does, so an integral float64 such as 3.0 is
// written "3" and reaches the library as the integer a Go user would expect.
func appendFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, bits)
}

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json
// does, so the text the library reads is always valid.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
