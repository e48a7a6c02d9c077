package telemetry

// Error reports: a panic on its way to killing the program (ReportPanic), a panic the
// program recovered from (CapturePanic) and an error it handled (CaptureError). This file
// turns Go values into the core's report (type, message, frames, causes) and hands it over;
// scrubbing, the fingerprint, the rate limits, the $exception event and the wait for
// delivery are the core's.
//
// Host code runs in here: a reported value's Error, String and Unwrap methods. Each call
// recovers its panics, so a hostile value makes a poorer report, never a second panic of
// ours. A crash's report is made on a goroutine of its own, which the crashing goroutine
// waits for at most the crash deadline, so even a method that never returns delays the
// crash by no more than the deadline.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Reported says what became of an error report.
type Reported int

const (
	// ReportNone: nothing was reported; the call's error says why.
	ReportNone Reported = iota
	// ReportQueued: queued for delivery without waiting (a handled error, or a crash whose
	// fingerprint the process already reported).
	ReportQueued
	// ReportDelivered: a crash's report, delivered within the crash deadline.
	ReportDelivered
	// ReportNotDelivered: a crash's report, not delivered within the crash deadline; still
	// queued, it goes out if the program lives on.
	ReportNotDelivered
	// ReportSuppressed: held back by the rate limits (WithCrashRateLimits); counted, and
	// the count goes out with the next report.
	ReportSuppressed
	// ReportDisabled: telemetry is off for this client; nothing was done.
	ReportDisabled
)

// String names the outcome.
func (r Reported) String() string {
	switch r {
	case ReportNone:
		return "none"
	case ReportQueued:
		return "queued"
	case ReportDelivered:
		return "delivered"
	case ReportNotDelivered:
		return "not delivered"
	case ReportSuppressed:
		return "suppressed"
	case ReportDisabled:
		return "disabled"
	}
	return fmt.Sprintf("Reported(%d)", int(r))
}

// ReportPanic reports a panic that is killing the program, then panics again with the
// same value. Defer it directly, first thing in main and in every goroutine the program
// starts (a panic is seen only by the deferred calls of its own goroutine), after
// deferring Close:
//
//	defer client.Close(context.Background())
//	defer client.ReportPanic()
//
// It recovers the panic, reports it as a crash (unhandled, $exception_level fatal) with
// the panicking goroutine's frames and, for an error value, its type and chain of wrapped
// errors, and waits for the report's delivery at most the crash deadline
// (WithCrashDeadline, 1 s by default; only the first report of a fingerprint waits). Then
// it panics again with the original value, so the program dies as it would have: exit
// status 2, and the runtime prints the value and the goroutine's stack (marked
// "[recovered, repanicked]" in recent Go versions). An outer recover sees the original
// value.
//
// Nothing in it panics or blocks longer than the deadline: a value whose Error or String
// method panics is described as fmt describes it, one that never returns is abandoned at
// the deadline. When there is no panic (ReportPanic called directly, or from a deferred
// function instead of as one, where recover sees nothing), it does nothing. Opted out, on
// a nil or closed Client, it only panics again.
//
// With several clients (a library inside an application), defer each one's ReportPanic:
// each reports under its own consent and waits up to its own deadline.
func (c *Client) ReportPanic() {
	v := recover()
	if v == nil {
		return
	}
	if c != nil && c.enabled && !c.c.closed.Load() {
		c.c.reportCrash(v, callers())
		runtime.KeepAlive(c)
	}
	panic(v)
}

// CapturePanic reports a panic the program recovered from and survives (a server's
// recover middleware), as a handled error: queued, never waiting. Call it in the deferred
// function that recovered v, so the panic's frames are still on the stack:
//
//	defer func() {
//		if v := recover(); v != nil {
//			client.CapturePanic(v)
//			http.Error(w, "internal error", http.StatusInternalServerError)
//		}
//	}()
//
// The report is the one ReportPanic makes, marked handled. Called outside a deferred
// function, the frames are the caller's.
//
// Errors: ErrInvalidArgument (v is nil), ErrShutDown (after Close). Opted out it returns
// ReportDisabled and nil, touching nothing.
func (c *Client) CapturePanic(v any) (Reported, error) {
	defer runtime.KeepAlive(c)
	in := c.c
	if in.closed.Load() {
		return ReportNone, errClosed("CapturePanic")
	}
	if !c.enabled {
		return ReportDisabled, nil
	}
	if v == nil {
		return ReportNone, newError(CodeInvalidArgument, "CapturePanic(nil): no panic to report")
	}
	return in.report(panicReport(v, callers()), false)
}

// CaptureError reports an error the program handled: its type (%T) and message, the
// chain of errors it wraps (errors.Unwrap and errors.Join, nearest first, at most 8) as
// causes, each with its own type and message, and the caller's frames, since a Go error
// carries no stack of its own. The report is queued and goes out with the next batch;
// CaptureError never waits for delivery.
//
//	if err := sync(ctx); err != nil {
//		log.Print(err)
//		client.CaptureError(err)
//	}
//
// Messages are scrubbed by the library (e-mail and IP addresses, URLs, home directories,
// user and host names); files keep their names only. The error's Error and Unwrap methods
// are called on this goroutine, as fmt would call them; their panics are recovered (the
// message then says so, as fmt does). Repeats are held back by the rate limits
// (ReportSuppressed).
//
// Errors: ErrInvalidArgument (err is nil), ErrShutDown (after Close). Opted out it
// returns ReportDisabled and nil, touching nothing.
func (c *Client) CaptureError(err error) (Reported, error) {
	defer runtime.KeepAlive(c)
	in := c.c
	if in.closed.Load() {
		return ReportNone, errClosed("CaptureError")
	}
	if !c.enabled {
		return ReportDisabled, nil
	}
	if err == nil {
		return ReportNone, newError(CodeInvalidArgument, "CaptureError(nil): no error to report")
	}
	r := errorReport{
		Type:     typeName(err),
		Message:  describe(err),
		Frames:   stackFrames(callers(), false),
		Causes:   causes(err),
		Platform: "go",
	}
	return in.report(r, false)
}

// reportCrash reports v as a crash, on a goroutine of its own, waiting for it at most the
// crash deadline; pcs is the panicking goroutine's stack.
func (in *client) reportCrash(v any, pcs []uintptr) {
	in.crashAt.Store(int64(monotonic()) + 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A panic here would be a bug of ours; the crash goes on as it would without us.
		defer func() { _ = recover() }()
		report := panicReport(v, pcs)
		// Events captured before the crash reach the library first, so the crash's wait
		// delivers them too.
		in.drain()
		_, _ = in.report(report, true)
	}()
	timer := time.NewTimer(in.crashDeadline)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// report encodes r and hands it to the library.
func (in *client) report(r errorReport, crash bool) (Reported, error) {
	text, err := json.Marshal(&r)
	if err != nil {
		return ReportNone, newError(CodeInvalidEvent, "error report: %v", err)
	}
	in.hmu.RLock()
	defer in.hmu.RUnlock()
	if in.h == nil {
		return ReportNone, errClosed("error report")
	}
	return cReport(in.h, text, crash)
}

// crashWindowLeft is what is left of the crash deadline since this client's last crash
// report began, if it reported one.
func (in *client) crashWindowLeft() (time.Duration, bool) {
	at := in.crashAt.Load()
	if at == 0 {
		return 0, false
	}
	left := in.crashDeadline - (monotonic() - time.Duration(at-1))
	return max(left, 0), true
}

// panicking reports whether the calling goroutine is running deferred calls of a panic.
func panicking() bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if f.Function == "runtime.gopanic" {
			return true
		}
		if !more {
			return false
		}
	}
}

// The core's JSON form of a report (telemetry_core::crash::ErrorReport).
type errorReport struct {
	Type     string          `json:"type"`
	Message  string          `json:"message"`
	Frames   []reportFrame   `json:"frames"`
	Causes   []reportFailure `json:"causes,omitempty"`
	Platform string          `json:"platform"`
}

type reportFrame struct {
	Function string `json:"function"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	InApp    bool   `json:"in_app"`
}

type reportFailure struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// panicReport describes a panic's value v: an error by its type, message and causes,
// anything else as type "panic" with its message. pcs is the panicking goroutine's stack.
func panicReport(v any, pcs []uintptr) errorReport {
	r := errorReport{Type: "panic", Message: describe(v), Frames: stackFrames(pcs, true), Platform: "go"}
	if err, ok := v.(error); ok {
		r.Type = typeName(err)
		r.Causes = causes(err)
	}
	return r
}

// maxMessageBytes bounds each message handed to the library, far above the 64 KiB the
// library keeps, so even a report of huge messages crosses within the C ABI's input limit.
const maxMessageBytes = 1 << 20

// unprintable stands for a message whose Error or String method panicked with a value that
// itself cannot be printed (fmt describes the simple case itself).
const unprintable = "%!v(PANIC=the value's Error or String method panicked)"

// describe is v's message as fmt.Sprint gives it (an error's Error, a Stringer's String,
// anything else formatted), surviving its methods' panics, and bounded in length.
func describe(v any) (s string) {
	defer func() {
		if recover() != nil {
			s = unprintable
		}
	}()
	s = fmt.Sprint(v)
	if len(s) > maxMessageBytes {
		cut := maxMessageBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// typeName is %T of v (it calls no method of v).
func typeName(v any) string { return fmt.Sprintf("%T", v) }

// causes are the errors err wraps, nearest first, depth first through errors.Join's
// branches, at most as many as the library keeps (which also ends a chain that loops).
func causes(err error) []reportFailure {
	var out []reportFailure
	var visit func(e error)
	visit = func(e error) {
		for _, next := range unwrap(e) {
			if len(out) >= maxErrorCauses {
				return
			}
			if next == nil {
				continue
			}
			out = append(out, reportFailure{Type: typeName(next), Message: describe(next)})
			visit(next)
		}
	}
	visit(err)
	return out
}

// unwrap is what e wraps (Unwrap() error or Unwrap() []error); a panicking Unwrap ends the
// chain there.
func unwrap(e error) (next []error) {
	defer func() {
		if recover() != nil {
			next = nil
		}
	}()
	switch u := e.(type) {
	case interface{ Unwrap() []error }:
		return u.Unwrap()
	case interface{ Unwrap() error }:
		if n := u.Unwrap(); n != nil {
			return []error{n}
		}
	}
	return nil
}

// callers is the calling goroutine's stack from callers' caller (this package's frames at
// the top are cut by stackFrames, whatever was inlined), innermost first, deep enough for
// the frames the library keeps after the panic machinery.
func callers() []uintptr {
	pcs := make([]uintptr, maxErrorFrames+64)
	return pcs[:runtime.Callers(2, pcs)]
}

// ownPackage is this package's import path: its frames are never the host's, and the
// ones at the top of a stack (the reporting call itself) are not reported.
var ownPackage = reflect.TypeOf(Client{}).PkgPath()

// appModule is the main module's path: functions in it, and in package main, are the
// host's own code (in_app); the standard library's and other modules' are not.
var appModule = sync.OnceValue(func() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		return info.Main.Path
	}
	return ""
})

func inPackage(function, path string) bool {
	return strings.HasPrefix(function, path) && strings.HasPrefix(function[len(path):], ".")
}

func isOwn(function string) bool { return inPackage(function, ownPackage) }

func inApp(function string) bool {
	if isOwn(function) {
		return false
	}
	if strings.HasPrefix(function, "main.") {
		return true
	}
	m := appModule()
	return m != "" && strings.HasPrefix(function, m) &&
		(strings.HasPrefix(function[len(m):], ".") || strings.HasPrefix(function[len(m):], "/"))
}

// isPanicHelper: the runtime's functions between a faulting instruction or a failed check
// and gopanic (sigpanic, panicmem, goPanicIndex, panicdivide, ...).
func isPanicHelper(function string) bool {
	return function == "runtime.sigpanic" || strings.HasPrefix(function, "runtime.panic") ||
		strings.HasPrefix(function, "runtime.goPanic")
}

// isDeferWrapper: the closure the compiler makes for `defer client.ReportPanic()`.
func isDeferWrapper(function string) bool { return strings.Contains(function, ".deferwrap") }

// stackFrames turns a stack (innermost first) into the report's frames, outermost first:
// function, file name (never a directory) and line, and whether the frame is the host's.
// With afterPanic, everything above the panic is cut: the reporting calls, the deferred
// calls of earlier ReportPanics that panicked again, gopanic and the runtime's panic
// helpers; the panicking function is the innermost frame. Otherwise only this package's
// frames at the top are.
func stackFrames(pcs []uintptr, afterPanic bool) []reportFrame {
	var all []runtime.Frame
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function != "" && f.Function != "runtime.goexit" {
			all = append(all, f)
		}
		if !more {
			break
		}
	}
	start := 0
	if afterPanic {
		first := -1
		for i, f := range all {
			if f.Function == "runtime.gopanic" {
				first = i
				break
			}
		}
		if first >= 0 {
			start = first + 1
			// A ReportPanic deferred below this one panicked again: its own frames and
			// the panic it recovered are machinery too.
			for {
				j := start
				for j < len(all) && (isOwn(all[j].Function) || isDeferWrapper(all[j].Function)) {
					j++
				}
				if j < len(all) && all[j].Function == "runtime.gopanic" {
					start = j + 1
					continue
				}
				break
			}
			for start < len(all) && isPanicHelper(all[start].Function) {
				start++
			}
		} else {
			afterPanic = false
		}
	}
	if !afterPanic {
		for start < len(all) && isOwn(all[start].Function) {
			start++
		}
	}
	all = all[start:]
	if len(all) > maxErrorFrames {
		all = all[:maxErrorFrames]
	}
	out := make([]reportFrame, len(all))
	for i, f := range all {
		out[len(all)-1-i] = reportFrame{
			Function: f.Function,
			File:     fileName(f.File),
			Line:     f.Line,
			InApp:    inApp(f.Function),
		}
	}
	return out
}

// fileName is the last element of a path in either separator style.
func fileName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}
