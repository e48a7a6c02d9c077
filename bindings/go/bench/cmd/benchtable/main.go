// Command benchtable reads `go test -bench` output from stdin and prints the Go figures
// beside their references from the same run: Capture off against an empty function call
// with the same arguments (target: at most 2x); Capture on at the rate the pipeline
// sustains, every event delivered and none dropped, against posthog-go delivering the same
// events (wall time per delivered event, target: faster), and apart the drop path (a loop
// that outruns delivery, the full queue dropping and counting) against posthog-go's
// Enqueue (target: faster); timing one operation (the clock readings
// included) against client_golang's Histogram (target: at most 2x), with, for
// information, what one call into the library per recording would cost instead; and a
// span with 3 attributes started and ended against go.opentelemetry.io/otel/sdk's (a
// BatchSpanProcessor and the OTLP/HTTP exporter, both exporting to the same loopback
// endpoint; target: no slower), and a span filtered out by granularity against a function
// that does nothing with the same arguments (target: at most 1.2x).
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	ns := map[string]float64{}
	dropped := map[string]float64{}
	rate := map[string]float64{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				ns[name] = v
			case "%dropped":
				dropped[name] = v
			case "events/s":
				rate[name] = v
			}
		}
	}
	rows := []struct{ what, ours, ref, refName, target string }{
		{"Capture, telemetry off", "CaptureOff", "FloorEmptyFunction", "empty function", "<= 2x"},
		{"Capture on, sustained, delivered", "CaptureSustained", "PosthogSustained", "posthog-go delivered", "< 1x"},
		{"Capture on, queue full (drop path)", "CaptureOverflow", "PosthogEnqueue", "posthog-go Enqueue", "< 1x"},
		{"Timing: time.Now, time.Since, Observe", "TimingNowSinceObserve", "PrometheusHistogram", "client_golang", "<= 2x"},
		{"Timing: Start().Stop()", "TimingStartStop", "PrometheusHistogram", "client_golang", "<= 2x"},
		{"Timing, parallel, one label set", "TimingStartStopParallel", "PrometheusHistogramParallel", "client_golang", "<= 2x"},
		{"(a cgo call per recording instead)", "UsageRecordThroughTheLibrary", "PrometheusHistogram", "client_golang", "info"},
		{"Span, 3 attributes, start and End", "SpanRecorded", "OTelSDKSpan", "otel/sdk batch+OTLP", "<= 1x"},
		{"Span, 3 attributes, parallel", "SpanRecordedParallel", "OTelSDKSpanParallel", "otel/sdk batch+OTLP", "<= 1x"},
		{"Span filtered out by granularity", "SpanFiltered", "FloorSpanFunction", "no-op function", "<= 1.2x"},
	}
	fmt.Printf("\n%-38s %10s  %-20s %10s  %7s  %-8s %s\n", "Go, ns/op (same run)", "ours", "reference", "ns/op", "ratio", "target", "")
	missing := false
	for _, r := range rows {
		o, ok1 := ns[r.ours]
		f, ok2 := ns[r.ref]
		if !ok1 || !ok2 {
			fmt.Printf("%-38s missing from the run\n", r.what)
			missing = true
			continue
		}
		ratio := o / f
		met := true
		switch r.target {
		case "< 1x":
			met = ratio < 1
		case "<= 1x":
			met = ratio <= 1
		case "<= 1.2x":
			met = ratio <= 1.2
		case "<= 2x":
			met = ratio <= 2
		}
		verdict := "met"
		switch {
		case r.target == "info":
			verdict = "(not a target: what usage_record.go avoids)"
		case !met:
			verdict = "MISSED"
		}
		fmt.Printf("%-38s %10.2f  %-20s %10.2f  %6.2fx  %-8s %s\n", r.what, o, r.refName, f, ratio, r.target, verdict)
		if e := note(r.ours, r.ref, dropped, rate); e != "" {
			fmt.Printf("%-38s %s\n", "", e)
		}
	}
	if missing {
		os.Exit(1)
	}
}

// note says what a row's figure is made of: the delivered rates of a sustained run (which
// drops nothing, or it fails), or the share the full queue dropped.
func note(ours, ref string, dropped, rate map[string]float64) string {
	d, hasDropped := dropped[ours]
	r, hasRate := rate[ours]
	switch {
	case hasRate && d == 0:
		s := fmt.Sprintf("%.0f events/s delivered end to end, 5 properties, 0 dropped (sent = captured)", r)
		if rr, ok := rate[ref]; ok {
			s += fmt.Sprintf("; posthog-go %.0f events/s", rr)
		}
		return s
	case hasDropped:
		return fmt.Sprintf("%.0f%% dropped by the full queue, counted: the caller's cost when delivery cannot keep up", d)
	}
	return ""
}
