package telemetry

// The finished-span wire format, the one crossing a span costs (telemetry-core's
// otel::wire, which documents it). All integers little-endian; a string is a u32 length
// and that many UTF-8 bytes:
//
//	u8  version (1)
//	[16] trace id   [8] span id   [8] parent span id (all zero: a root)
//	u8  flags: bit 0 sampled, bit 1 parent is remote
//	u8  kind: 0 internal, 1 server, 2 client, 3 producer, 4 consumer
//	u64 start, u64 end (Unix nanoseconds)
//	u8  status: 0 unset, 1 ok, 2 error;  str status message
//	str name;  str tracestate
//	u32 attribute count, attributes;  u32 event count, events
//	attribute: str key, u8 type (1 string: str, 2 bool: u8, 3 int: i64, 4 float: f64)
//	event: str name, u64 time, u32 attribute count, attributes
//
// The library refuses a span with a string that is not UTF-8, so such strings are
// repaired here (each invalid byte sequence becomes U+FFFD), as Go's OpenTelemetry SDK
// does before export.

import (
	"strings"
	"unicode/utf8"
)

const wireVersion = 1

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func appendU64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24),
		byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

func appendStr(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

func appendAttributes(b []byte, attrs []Attribute) []byte {
	b = appendU32(b, uint32(len(attrs)))
	for i := range attrs {
		a := &attrs[i]
		b = appendStr(b, a.Key)
		b = append(b, byte(a.typ))
		switch a.typ {
		case attrString:
			b = appendStr(b, a.str)
		case attrBool:
			b = append(b, byte(a.num&1))
		default: // int and float: 8 bytes
			b = appendU64(b, a.num)
		}
	}
	return b
}

// appendSpan appends d's encoding to b.
func appendSpan(b []byte, d *spanData) []byte {
	b = append(b, wireVersion)
	b = append(b, d.traceID[:]...)
	b = append(b, d.spanID[:]...)
	b = append(b, d.parentID[:]...)
	var flags byte
	if d.sampled {
		flags |= 1
	}
	if d.parentRemote {
		flags |= 2
	}
	b = append(b, flags, byte(d.kind))
	b = appendU64(b, d.startNanos)
	b = appendU64(b, d.endNanos)
	b = append(b, byte(d.status))
	b = appendStr(b, d.statusMsg)
	b = appendStr(b, d.name)
	b = appendStr(b, d.traceState)
	b = appendAttributes(b, d.attrs)
	b = appendU32(b, uint32(len(d.events)))
	for i := range d.events {
		e := &d.events[i]
		b = appendStr(b, e.name)
		b = appendU64(b, e.nanos)
		b = appendAttributes(b, e.attrs)
	}
	return b
}
