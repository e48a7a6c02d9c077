//go:build cgo

package telemetry

// ffi_off.go, the build without the library, restates the C ABI's constants by value (it
// cannot read the header without cgo). Here, with the header, each value it states must be
// the header's, and it must state every one ffi.go takes from the header.

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

func TestOffBuildConstantsAreTheHeaders(t *testing.T) {
	src, err := os.ReadFile("ffi_off.go")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"CodeNullPointer": int64(CodeNullPointer), "CodeInvalidUTF8": int64(CodeInvalidUTF8),
		"CodeInvalidJSON": int64(CodeInvalidJSON), "CodeInvalidConfig": int64(CodeInvalidConfig),
		"CodeInvalidEvent": int64(CodeInvalidEvent), "CodeInvalidArgument": int64(CodeInvalidArgument),
		"CodeTooLarge": int64(CodeTooLarge), "CodeShutDown": int64(CodeShutDown),
		"CodeTimeout": int64(CodeTimeout), "CodeNoMemorySink": int64(CodeNoMemorySink),
		"CodePanic": int64(CodePanic), "CodeNotDelivered": int64(CodeNotDelivered),
		"maxEventNameBytes": maxEventNameBytes, "maxInputBytes": maxInputBytes,
		"maxTimeout":      int64(maxTimeout / time.Hour), // stated in hours
		"timingCellWords": timingCellWords, "timingCellTotalNanos": timingCellTotalNanos,
		"timingCellBuckets": timingCellBuckets, "timingCellMinNanos": timingCellMinNanos,
		"timingCellMaxNanos": timingCellMaxNanos, "timingCellLastSecond": timingCellLastSecond,
		"timingCellFail": timingCellFail, "maxTimingBounds": maxTimingBounds,
		"maxErrorFrames": maxErrorFrames, "maxErrorCauses": maxErrorCauses,
	}
	// `name [Code] = 64 * 1024 * 1024` or `= 24 * time.Hour`: a product of integers.
	line := regexp.MustCompile(`(?m)^\t(\w+)\s+(?:Code\s+)?=\s+([0-9][0-9 *]*)(?:\s*\*\s*time\.Hour)?\s*$`)
	seen := map[string]bool{}
	for _, m := range line.FindAllStringSubmatch(string(src), -1) {
		name, expr := m[1], m[2]
		w, ok := want[name]
		if !ok {
			continue
		}
		v := int64(1)
		for _, f := range regexp.MustCompile(`\d+`).FindAllString(expr, -1) {
			n, _ := strconv.ParseInt(f, 10, 64)
			v *= n
		}
		if v != w {
			t.Errorf("ffi_off.go states %s = %d, the header %d", name, v, w)
		}
		seen[name] = true
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("ffi_off.go does not state %s", name)
		}
	}
}
