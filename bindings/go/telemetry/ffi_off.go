//go:build !cgo

package telemetry

// The package without telemetry-core's library: a build without cgo (CGO_ENABLED=0, a
// cross-compile without a C compiler) or, in the released module, a platform it carries
// no prebuilt library for (`make go-module` rewrites this file's constraint to say so).
// A host that cannot link us must still build and run, so this file stands in for
// ffi.go with the same functions: every client is off, its Decision says why, and every
// call is a cheap no-op that never panics, blocks or starts anything. The rest of the
// package is the same code in both builds, so the public API cannot drift between them.
//
// What the host sees: New succeeds (the configuration is not checked: the core that
// checks it is absent), Enabled is false, Capture and Flush return nil, Stats are zero,
// tracing is inactive (TraceConfig's Warnings say why), crash reports are
// ReportDisabled. Usage handles count in Go memory, so Counter.Value and
// Timing.Snapshot read back what the host recorded; the report and the Prometheus text,
// which the core renders, are empty, the handlers answer 503 with the reason, and Serve
// starts no server (its URL is ""). Preview needs the core's anonymization and returns
// ErrInvalidConfig with the reason.

import (
	"encoding/json"
	"runtime"
	"sync/atomic"
	"time"
)

// The C ABI's constants, as include/telemetry.h defines them. ffi_off_test.go (run in
// the cgo build) compares each with the header's, so they cannot drift.
const (
	CodeNullPointer     Code = 1
	CodeInvalidUTF8     Code = 2
	CodeInvalidJSON     Code = 3
	CodeInvalidConfig   Code = 4
	CodeInvalidEvent    Code = 5
	CodeInvalidArgument Code = 6
	CodeTooLarge        Code = 7
	CodeShutDown        Code = 8
	CodeTimeout         Code = 9
	CodeNoMemorySink    Code = 10
	CodePanic           Code = 11
	CodeNotDelivered    Code = 12

	maxEventNameBytes = 200
	maxInputBytes     = 64 * 1024 * 1024
	maxTimeout        = 24 * time.Hour

	timingCellWords      = 21
	timingCellTotalNanos = 0
	timingCellBuckets    = 1
	timingCellMinNanos   = 17
	timingCellMaxNanos   = 18
	timingCellLastSecond = 19
	timingCellFail       = 20
	maxTimingBounds      = 15

	maxErrorFrames = 64
	maxErrorCauses = 8
)

// maxSpanBytes is the largest encoded span the library accepts.
const maxSpanBytes = 4 << 20

// crossings and recordingCrossings count calls into C, as in ffi.go; there are none here.
var crossings, recordingCrossings atomic.Int64

// linkedNot says why the library is absent, for the decision, the trace configuration
// and every error and answer that needs the core.
func linkedNot() string {
	if !builtWithCgo {
		return "this program was built without cgo (CGO_ENABLED=0), so telemetry-core's library is not linked: telemetry is off"
	}
	return "this module carries no telemetry-core library for " + runtime.GOOS + "/" + runtime.GOARCH +
		", so it is not linked: telemetry is off"
}

// offDecision is every client's decision, made once: a build fact, not a consent source.
var offDecision = func() []byte {
	name, value := "CGO_ENABLED", "0"
	if builtWithCgo {
		name, value = "GOOS/GOARCH", runtime.GOOS+"/"+runtime.GOARCH
	}
	source := Source{Kind: "build", Name: name, Value: &value, Says: "off"}
	d := Decision{
		Enabled:   false,
		DecidedBy: &Source{Kind: source.Kind, Name: source.Name, Value: &value},
		Sources:   []Source{source},
		Warnings:  []string{},
		// Shaped like the core's explanations: the verdict and why, then the source read.
		Explanation: linkedNot() + "\n  build        " + name + ": " + value,
	}
	text, _ := json.Marshal(&d) // plain strings and a bool: cannot fail
	return text
}()

// offTraceConfig is every client's observability configuration: inactive, saying why.
var offTraceConfig = func() []byte {
	text, _ := json.Marshal(map[string]any{
		"active":      false,
		"level":       0,
		"granularity": "none",
		"disabled":    true,
		"sampler":     Sampler{Kind: "always_off"},
		"compression": "none",
		"origins":     map[string]TraceOrigin{},
		"headers":     []string{},
		"warnings":    []string{"no spans are recorded: " + linkedNot()},
	})
	return text
}()

func notLinked(what string) error {
	return newError(CodeInvalidConfig, "%s needs telemetry-core's library: %s", what, linkedNot())
}

// offClient stands for a library client. It is never nil, so the package's "closed"
// checks (h == nil) work as with the library.
type offClient struct{ _ byte }

type handle = *offClient

func coreVersion() string { return "" }

func cNew([]byte) (handle, error)                    { return &offClient{}, nil }
func cFree(handle)                                   {}
func cIsEnabled(handle) (bool, error)                { return false, nil }
func cCaptureBatch(handle, []byte) error             { return nil }
func cFlush(handle, time.Duration) error             { return nil }
func cShutdown(handle, time.Duration) error          { return nil }
func cDecision(handle) ([]byte, error)               { return offDecision, nil }
func cStats(handle) ([]byte, error)                  { return []byte("{}"), nil }
func cMemoryEvents(handle) ([]byte, error)           { return []byte("[]"), nil }
func cPreview(handle, []byte) ([]byte, error)        { return nil, notLinked("Preview") }
func cAnonymize([]byte) ([]byte, error)              { return nil, notLinked("anonymizing") }
func cLogEnable(bool) bool                           { return false }
func cLogTake() ([]byte, error)                      { return []byte("[]"), nil }
func cTraceConfig(handle) ([]byte, error)            { return offTraceConfig, nil }
func cRecordSpan(handle, []byte) error               { return nil }
func cSpanStats(handle) ([]byte, error)              { return []byte("{}"), nil }
func cFlushSpans(handle, time.Duration) error        { return nil }
func cReport(handle, []byte, bool) (Reported, error) { return ReportDisabled, nil }

// Usage statistics: handles count in Go memory (the words usage_record.go adds to), so a
// host reading its own numbers back sees them; nothing renders them.

type timingWords = [timingCellWords]uint64

type offTimingFamily struct{ _ byte }

type offTiming struct{ words timingWords }

type offCounterFamily struct{ _ byte }

type offCounter struct{ word uint64 }

type offServer struct{ _ byte }

type (
	timingFamilyHandle  = *offTimingFamily
	timingHandle        = *offTiming
	counterFamilyHandle = *offCounterFamily
	counterHandle       = *offCounter
	serverHandle        = *offServer
)

func cTimingFamilyNew(handle, []byte) (timingFamilyHandle, error)  { return &offTimingFamily{}, nil }
func cTimingFamilyFree(timingFamilyHandle)                         {}
func cTimingFamilyRecord(timingFamilyHandle, []byte, uint64) error { return nil }
func cTimingFamilyRecordFailure(timingFamilyHandle, []byte) error  { return nil }
func cTimingFree(timingHandle)                                     {}

func cTimingFamilyWith(timingFamilyHandle, []byte) (timingHandle, error) {
	t := &offTiming{}
	t.words[timingCellMinNanos] = ^uint64(0) // as the core's cell starts: any duration is lower
	return t, nil
}

// cTimingCell gives no bounds: every duration lands in the one bucket, which is all the
// words need to stay consistent (count = the buckets' sum).
func cTimingCell(t timingHandle) (*timingWords, []uint64, error) { return &t.words, nil, nil }

func cTimingRecord(t timingHandle, nanos uint64) error {
	return cTimingRecordAt(t, nanos, uint64(time.Now().Unix()))
}

func cTimingRecordAt(t timingHandle, nanos, unixSecond uint64) error {
	w := &t.words
	atomic.AddUint64(&w[timingCellTotalNanos], nanos)
	atomic.AddUint64(&w[timingCellBuckets], 1)
	lowerTo(&w[timingCellMinNanos], nanos)
	raiseTo(&w[timingCellMaxNanos], nanos)
	raiseTo(&w[timingCellLastSecond], unixSecond)
	return nil
}

func cTimingRecordFailureAt(t timingHandle, unixSecond uint64) error {
	atomic.AddUint64(&t.words[timingCellFail], 1)
	raiseTo(&t.words[timingCellLastSecond], unixSecond)
	return nil
}

func cTimingSnapshot(t timingHandle) ([]byte, error) {
	w := &t.words
	count := atomic.LoadUint64(&w[timingCellBuckets])
	minNanos := atomic.LoadUint64(&w[timingCellMinNanos])
	if count == 0 {
		minNanos = 0
	}
	return json.Marshal(map[string]any{
		"count":       count,
		"fail_count":  atomic.LoadUint64(&w[timingCellFail]),
		"total_nanos": atomic.LoadUint64(&w[timingCellTotalNanos]),
		"min_nanos":   minNanos,
		"max_nanos":   atomic.LoadUint64(&w[timingCellMaxNanos]),
		"last_second": atomic.LoadUint64(&w[timingCellLastSecond]),
		"cumulative":  []uint64{},
	})
}

func cCounterFamilyNew(handle, []byte) (counterFamilyHandle, error) { return &offCounterFamily{}, nil }
func cCounterFamilyFree(counterFamilyHandle)                        {}
func cCounterFamilyAdd(counterFamilyHandle, []byte, uint64) error   { return nil }
func cCounterFree(counterHandle)                                    {}

func cCounterFamilyWith(counterFamilyHandle, []byte) (counterHandle, error) {
	return &offCounter{}, nil
}

func cCounterAdd(c counterHandle, value uint64) error {
	atomic.AddUint64(&c.word, value)
	return nil
}

func cCounterCell(c counterHandle) (*uint64, error) { return &c.word, nil }

func cSetSection(handle, string, []byte) error         { return nil }
func cRemoveSection(handle, string) (bool, error)      { return false, nil }
func cSetAppFields(handle, []byte) error               { return nil }
func cSetDataDir(handle, string) error                 { return nil }
func cUsageReport(handle, []byte) ([]byte, error)      { return []byte("{}"), nil }
func cUsagePrometheus(handle, bool) ([]byte, error)    { return nil, nil }
func cUsageServe(handle, string) (serverHandle, error) { return &offServer{}, nil }
func cUsageServerURL(serverHandle) ([]byte, error)     { return nil, nil }
func cUsageServerFree(serverHandle)                    {}

// cUsageHandle answers every request with 503 and the reason: an operator scraping
// /metrics learns why there is nothing, instead of reading an empty success.
func cUsageHandle(handle, string, string) (int, string, []byte, error) {
	body, _ := json.Marshal(map[string]string{"error": "usage statistics are not served: " + linkedNot()})
	return 503, "application/json", body, nil
}
