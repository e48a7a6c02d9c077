//go:build cgo

package telemetry

// Every call into include/telemetry.h lives in this file. Go memory handed to C is string
// or byte data without Go pointers inside, used only for the duration of the call, as the
// cgo pointer rules require; strings coming back are copied and freed at once.
//
// Without cgo, ffi_off.go stands in for this file (every client off, saying why). The
// explicit constraint is what `make go-module` rewrites to "cgo and a platform the module
// carries a library for".
//
// Where the header and the library are is the link file's business: link_release.go and
// link_debug.go in the checkout (include/ and target/ at the root), link_prebuilt.go in
// the module `make go-module` produces (the header beside this file, lib/<goos>_<goarch>/).
// A copy of the checkout's package elsewhere (vendor/, the module cache) has neither, and
// fails with the #error below rather than a bare "telemetry.h: No such file or directory".

// #include <stdlib.h>
// #if defined(__has_include)
// #if !__has_include("telemetry.h")
// #error "telemetry.h not found: build this package from a telemetry-core checkout through a replace directive, or use the released module (make go-module; bindings/go/README.md)"
// #endif
// #endif
// #include "telemetry.h"
import "C"

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// Error codes, the values of telemetry_error_code_t.
const (
	CodeNullPointer     Code = C.TELEMETRY_ERROR_CODE_NULL_POINTER
	CodeInvalidUTF8     Code = C.TELEMETRY_ERROR_CODE_INVALID_UTF8
	CodeInvalidJSON     Code = C.TELEMETRY_ERROR_CODE_INVALID_JSON
	CodeInvalidConfig   Code = C.TELEMETRY_ERROR_CODE_INVALID_CONFIG
	CodeInvalidEvent    Code = C.TELEMETRY_ERROR_CODE_INVALID_EVENT
	CodeInvalidArgument Code = C.TELEMETRY_ERROR_CODE_INVALID_ARGUMENT
	CodeTooLarge        Code = C.TELEMETRY_ERROR_CODE_TOO_LARGE
	CodeShutDown        Code = C.TELEMETRY_ERROR_CODE_SHUT_DOWN
	CodeTimeout         Code = C.TELEMETRY_ERROR_CODE_TIMEOUT
	CodeNoMemorySink    Code = C.TELEMETRY_ERROR_CODE_NO_MEMORY_SINK
	CodePanic           Code = C.TELEMETRY_ERROR_CODE_PANIC
	CodeNotDelivered    Code = C.TELEMETRY_ERROR_CODE_NOT_DELIVERED
)

const (
	// maxEventNameBytes is the core's limit on an event name, checked in Capture so the
	// error comes back to the caller instead of surfacing later from the sender.
	maxEventNameBytes = C.TELEMETRY_MAX_EVENT_NAME_BYTES
	// maxInputBytes is the most the C ABI reads in one string argument.
	maxInputBytes = C.TELEMETRY_MAX_INPUT_BYTES
	// maxTimeout is the longest wait the C ABI honours; longer ones are clamped to it.
	maxTimeout = time.Duration(C.TELEMETRY_MAX_TIMEOUT_MS) * time.Millisecond
)

// crossings counts calls into C, so tests can prove that an opted-out client never makes
// one. One atomic add next to a cgo call costs nothing measurable.
var crossings atomic.Int64

// recordingCrossings counts the calls into C that record a timing or a counter, so tests
// can prove that a handle records without one after its first recording (crossings also
// counts the frees that finalizers make at any moment).
var recordingCrossings atomic.Int64

// handle is a live telemetry_client_t.
type handle = *C.telemetry_client_t

// empty stands in for the data pointer of an empty Go string, which may be nil: the C ABI
// reads NULL as "missing", not as "".
var empty byte

func cBytes(b []byte) (*C.char, C.size_t) {
	if len(b) == 0 {
		return (*C.char)(unsafe.Pointer(&empty)), 0
	}
	return (*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// fromC turns an owned telemetry_error_t* into a Go error and frees it; nil stays nil.
func fromC(e *C.telemetry_error_t) error {
	if e == nil {
		return nil
	}
	defer C.telemetry_error_free(e)
	return &Error{
		Code:    Code(C.telemetry_error_code(e)),
		Message: C.GoString(C.telemetry_error_message(e)),
	}
}

// takeString copies a library-owned string and frees it.
func takeString(p *C.char, n C.size_t) []byte {
	if p == nil {
		return nil
	}
	out := make([]byte, int(n))
	copy(out, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)))
	C.telemetry_string_free(p)
	return out
}

func ms(d time.Duration) C.uint64_t {
	if d <= 0 {
		return 0
	}
	if d > maxTimeout {
		d = maxTimeout
	}
	return C.uint64_t(d / time.Millisecond)
}

func coreVersion() string {
	crossings.Add(1)
	return C.GoString(C.telemetry_version())
}

func cNew(config []byte) (handle, error) {
	crossings.Add(1)
	var h handle
	p, n := cBytes(config)
	if err := fromC(C.telemetry_client_new(p, n, &h)); err != nil {
		return nil, err
	}
	return h, nil
}

func cFree(h handle) {
	crossings.Add(1)
	C.telemetry_client_free(h)
}

func cIsEnabled(h handle) (bool, error) {
	crossings.Add(1)
	var on C.bool
	err := fromC(C.telemetry_client_is_enabled(h, &on))
	return bool(on), err
}

func cCaptureBatch(h handle, events []byte) error {
	crossings.Add(1)
	p, n := cBytes(events)
	return fromC(C.telemetry_client_capture_batch(h, p, n, nil))
}

func cFlush(h handle, timeout time.Duration) error {
	crossings.Add(1)
	return fromC(C.telemetry_client_flush(h, ms(timeout)))
}

func cShutdown(h handle, timeout time.Duration) error {
	crossings.Add(1)
	return fromC(C.telemetry_client_shutdown(h, ms(timeout)))
}

// cJSON runs one of the calls that write a JSON string to an out-parameter.
func cJSON(call func(out **C.char, n *C.size_t) *C.telemetry_error_t) ([]byte, error) {
	crossings.Add(1)
	var out *C.char
	var n C.size_t
	if err := fromC(call(&out, &n)); err != nil {
		return nil, err
	}
	return takeString(out, n), nil
}

func cDecision(h handle) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_client_decision(h, out, n)
	})
}

func cStats(h handle) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_client_stats(h, out, n)
	})
}

func cMemoryEvents(h handle) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_client_memory_events(h, out, n)
	})
}

func cPreview(h handle, event []byte) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		p, l := cBytes(event)
		return C.telemetry_client_preview(h, p, l, out, n)
	})
}

func cAnonymize(request []byte) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		p, l := cBytes(request)
		return C.telemetry_anonymize(p, l, out, n)
	})
}

func cLogEnable(on bool) bool {
	crossings.Add(1)
	return bool(C.telemetry_log_enable(C.bool(on)))
}

func cLogTake() ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_log_take(out, n)
	})
}

// Usage statistics (usage.go, usage_record.go).

// The layout of a timing cell (telemetry_timing_cell_t; telemetry-core's usage::raw).
const (
	timingCellWords      = C.TELEMETRY_TIMING_CELL_WORDS
	timingCellTotalNanos = C.TELEMETRY_TIMING_CELL_TOTAL_NANOS
	timingCellBuckets    = C.TELEMETRY_TIMING_CELL_BUCKETS
	timingCellMinNanos   = C.TELEMETRY_TIMING_CELL_MIN_NANOS
	timingCellMaxNanos   = C.TELEMETRY_TIMING_CELL_MAX_NANOS
	timingCellLastSecond = C.TELEMETRY_TIMING_CELL_LAST_SECOND
	timingCellFail       = C.TELEMETRY_TIMING_CELL_FAIL
	maxTimingBounds      = C.TELEMETRY_MAX_TIMING_BOUNDS
)

// timingWords is a timing cell's words, in the library's memory.
type timingWords = [timingCellWords]uint64

type (
	timingFamilyHandle  = *C.telemetry_timing_family_t
	timingHandle        = *C.telemetry_timing_t
	counterFamilyHandle = *C.telemetry_counter_family_t
	counterHandle       = *C.telemetry_counter_t
	serverHandle        = *C.telemetry_usage_server_t
)

func cTimingFamilyNew(h handle, declaration []byte) (timingFamilyHandle, error) {
	crossings.Add(1)
	var f timingFamilyHandle
	p, n := cBytes(declaration)
	if err := fromC(C.telemetry_timing_family_new(h, p, n, &f)); err != nil {
		return nil, err
	}
	return f, nil
}

func cTimingFamilyFree(f timingFamilyHandle) {
	crossings.Add(1)
	C.telemetry_timing_family_free(f)
}

func cTimingFamilyWith(f timingFamilyHandle, labels []byte) (timingHandle, error) {
	crossings.Add(1)
	var t timingHandle
	p, n := cBytes(labels)
	if err := fromC(C.telemetry_timing_family_with(f, p, n, &t)); err != nil {
		return nil, err
	}
	return t, nil
}

func cTimingFamilyRecord(f timingFamilyHandle, labels []byte, nanos uint64) error {
	crossings.Add(1)
	p, n := cBytes(labels)
	return fromC(C.telemetry_timing_family_record(f, p, n, C.uint64_t(nanos)))
}

func cTimingFamilyRecordFailure(f timingFamilyHandle, labels []byte) error {
	crossings.Add(1)
	p, n := cBytes(labels)
	return fromC(C.telemetry_timing_family_record_failure(f, p, n))
}

func cTimingFree(t timingHandle) {
	crossings.Add(1)
	C.telemetry_timing_free(t)
}

// cTimingRecord records through the library with the library's clock for the second
// (usage_bench_test.go measures it).
func cTimingRecord(t timingHandle, nanos uint64) error {
	crossings.Add(1)
	recordingCrossings.Add(1)
	return fromC(C.telemetry_timing_record(t, C.uint64_t(nanos)))
}

func cTimingRecordAt(t timingHandle, nanos, unixSecond uint64) error {
	crossings.Add(1)
	recordingCrossings.Add(1)
	return fromC(C.telemetry_timing_record_at(t, C.uint64_t(nanos), C.uint64_t(unixSecond)))
}

func cTimingRecordFailureAt(t timingHandle, unixSecond uint64) error {
	crossings.Add(1)
	recordingCrossings.Add(1)
	return fromC(C.telemetry_timing_record_failure_at(t, C.uint64_t(unixSecond)))
}

func cTimingSnapshot(t timingHandle) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_timing_snapshot(t, out, n)
	})
}

// cTimingCell returns the timing's cell in the library's memory and a copy of its
// family's bounds. The words stay valid until cTimingFree(t).
func cTimingCell(t timingHandle) (*timingWords, []uint64, error) {
	crossings.Add(1)
	var view C.telemetry_timing_cell_t
	if err := fromC(C.telemetry_timing_cell(t, &view)); err != nil {
		return nil, nil, err
	}
	n := int(view.bounds_len)
	if view.words == nil || n > maxTimingBounds || (n > 0 && view.bounds == nil) {
		return nil, nil, newError(CodePanic, "the library returned an invalid timing cell")
	}
	bounds := make([]uint64, n)
	if n > 0 {
		copy(bounds, unsafe.Slice((*uint64)(unsafe.Pointer(view.bounds)), n))
	}
	return (*timingWords)(unsafe.Pointer(view.words)), bounds, nil
}

func cCounterFamilyNew(h handle, declaration []byte) (counterFamilyHandle, error) {
	crossings.Add(1)
	var f counterFamilyHandle
	p, n := cBytes(declaration)
	if err := fromC(C.telemetry_counter_family_new(h, p, n, &f)); err != nil {
		return nil, err
	}
	return f, nil
}

func cCounterFamilyFree(f counterFamilyHandle) {
	crossings.Add(1)
	C.telemetry_counter_family_free(f)
}

func cCounterFamilyWith(f counterFamilyHandle, labels []byte) (counterHandle, error) {
	crossings.Add(1)
	var c counterHandle
	p, n := cBytes(labels)
	if err := fromC(C.telemetry_counter_family_with(f, p, n, &c)); err != nil {
		return nil, err
	}
	return c, nil
}

func cCounterFamilyAdd(f counterFamilyHandle, labels []byte, value uint64) error {
	crossings.Add(1)
	p, n := cBytes(labels)
	return fromC(C.telemetry_counter_family_add(f, p, n, C.uint64_t(value)))
}

func cCounterFree(c counterHandle) {
	crossings.Add(1)
	C.telemetry_counter_free(c)
}

func cCounterAdd(c counterHandle, value uint64) error {
	crossings.Add(1)
	recordingCrossings.Add(1)
	return fromC(C.telemetry_counter_add(c, C.uint64_t(value)))
}

// cCounterCell returns the counter's word in the library's memory, valid until
// cCounterFree(c).
func cCounterCell(c counterHandle) (*uint64, error) {
	crossings.Add(1)
	var w *C.uint64_t
	if err := fromC(C.telemetry_counter_cell(c, &w)); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, newError(CodePanic, "the library returned no counter word")
	}
	return (*uint64)(unsafe.Pointer(w)), nil
}

func cSetSection(h handle, name string, section []byte) error {
	crossings.Add(1)
	np, nn := cBytes([]byte(name))
	p, n := cBytes(section)
	return fromC(C.telemetry_usage_set_section(h, np, nn, p, n))
}

func cRemoveSection(h handle, name string) (bool, error) {
	crossings.Add(1)
	var removed C.bool
	p, n := cBytes([]byte(name))
	err := fromC(C.telemetry_usage_remove_section(h, p, n, &removed))
	return bool(removed), err
}

func cSetAppFields(h handle, fields []byte) error {
	crossings.Add(1)
	p, n := cBytes(fields)
	return fromC(C.telemetry_usage_set_app_fields(h, p, n))
}

func cSetDataDir(h handle, dir string) error {
	crossings.Add(1)
	p, n := cBytes([]byte(dir))
	return fromC(C.telemetry_usage_set_data_dir(h, p, n))
}

func cUsageReport(h handle, options []byte) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		p, l := cBytes(options)
		return C.telemetry_usage_report(h, p, l, out, n)
	})
}

func cUsagePrometheus(h handle, anonymize bool) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_usage_prometheus(h, C.bool(anonymize), out, n)
	})
}

func cUsageHandle(h handle, path, query string) (int, string, []byte, error) {
	crossings.Add(1)
	pp, pn := cBytes([]byte(path))
	qp, qn := cBytes([]byte(query))
	var status C.uint16_t
	var ctype, body *C.char
	var n C.size_t
	if err := fromC(C.telemetry_usage_handle(h, pp, pn, qp, qn, &status, &ctype, &body, &n)); err != nil {
		return 0, "", nil, err
	}
	contentType := C.GoString(ctype)
	C.telemetry_string_free(ctype)
	return int(status), contentType, takeString(body, n), nil
}

func cUsageServe(h handle, addr string) (serverHandle, error) {
	crossings.Add(1)
	var s serverHandle
	p, n := cBytes([]byte(addr))
	if err := fromC(C.telemetry_usage_serve(h, p, n, &s)); err != nil {
		return nil, err
	}
	return s, nil
}

func cUsageServerURL(s serverHandle) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_usage_server_url(s, out, n)
	})
}

func cUsageServerFree(s serverHandle) {
	crossings.Add(1)
	C.telemetry_usage_server_free(s)
}

// Error reports (crash.go).

const (
	// maxErrorFrames is how many frames of an exception the library keeps (the innermost).
	maxErrorFrames = C.TELEMETRY_MAX_ERROR_FRAMES
	// maxErrorCauses is how many causes behind an error the library keeps (the nearest).
	maxErrorCauses = C.TELEMETRY_MAX_ERROR_CAUSES
)

// cReport hands an error report (the core's JSON form) to the library: a crash
// (telemetry_client_report_crash: the first of a fingerprint waits for delivery up to the
// crash deadline) or a handled error (telemetry_client_capture_error: never waits).
func cReport(h handle, report []byte, crash bool) (Reported, error) {
	crossings.Add(1)
	var out C.telemetry_reported_t
	p, n := cBytes(report)
	var e *C.telemetry_error_t
	if crash {
		e = C.telemetry_client_report_crash(h, p, n, &out)
	} else {
		e = C.telemetry_client_capture_error(h, p, n, &out)
	}
	if err := fromC(e); err != nil {
		return ReportNone, err
	}
	switch out {
	case C.TELEMETRY_REPORTED_QUEUED:
		return ReportQueued, nil
	case C.TELEMETRY_REPORTED_DELIVERED:
		return ReportDelivered, nil
	case C.TELEMETRY_REPORTED_NOT_DELIVERED:
		return ReportNotDelivered, nil
	case C.TELEMETRY_REPORTED_SUPPRESSED:
		return ReportSuppressed, nil
	case C.TELEMETRY_REPORTED_DISABLED:
		return ReportDisabled, nil
	}
	return ReportNone, newError(CodePanic, "the library returned an unknown report outcome %d", int(out))
}

// Traces (trace.go, trace_wire.go).

// maxSpanBytes is the largest encoded span the library accepts.
const maxSpanBytes = 4 << 20

func cTraceConfig(h handle) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_client_trace_config(h, out, n)
	})
}

// cRecordSpan hands one ended span, encoded as trace_wire.go writes it, to the library:
// the one crossing a span costs. The bytes are only read during the call.
func cRecordSpan(h handle, span []byte) error {
	crossings.Add(1)
	p, n := cBytes(span)
	return fromC(C.telemetry_client_record_span(h, (*C.uint8_t)(unsafe.Pointer(p)), n))
}

func cSpanStats(h handle) ([]byte, error) {
	return cJSON(func(out **C.char, n *C.size_t) *C.telemetry_error_t {
		return C.telemetry_client_span_stats(h, out, n)
	})
}

func cFlushSpans(h handle, timeout time.Duration) error {
	crossings.Add(1)
	return fromC(C.telemetry_client_flush_spans(h, ms(timeout)))
}
