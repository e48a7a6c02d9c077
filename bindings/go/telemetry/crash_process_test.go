//go:build cgo

package telemetry

// Crashes for real: examples/crashlike, built as an integrator's program (a module of its
// own outside the repository, so its package main is the host's code and this package
// another module's), panics inside `defer client.ReportPanic()` as a child process
// reporting to the real collector. Its report (scrubbed) is stored before the child has
// exited; its exit status and its own crash output are those of a Go panic; a dead
// endpoint delays the crash by at most the deadline; opted out, nothing is sent.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildCrashlike builds examples/crashlike as the main package of the module
// example.com/crashlike, depending on this one through a replace directive.
func buildCrashlike(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	source, err := os.ReadFile(filepath.Join(root, "bindings", "go", "examples", "crashlike", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeModule(t, dir, "example.com/crashlike", string(source))
	if out, err := goCommand(t, dir, nil, "build", "-tags", "telemetry_ffi_debug", "-o", "crashlike", "."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "crashlike")
}

type crashRun struct {
	status int
	stderr string
	took   time.Duration // from start to exit
	dying  time.Duration // from "crashing at" (the program's own clock) to exit
	home   string
}

// crash runs the program with only PATH, a fresh HOME and env, and waits for it to die.
func crash(t *testing.T, bin string, args []string, env ...string) crashRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	started := time.Now()
	err := cmd.Run()
	exited := time.Now()
	r := crashRun{stderr: stderr.String(), took: exited.Sub(started), home: home}
	if _, rest, ok := strings.Cut(r.stderr, "crashlike: crashing at "); ok {
		line, _, _ := strings.Cut(rest, "\n")
		if at, err := time.Parse(time.RFC3339Nano, line); err == nil {
			r.dying = exited.Sub(at)
		}
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the program did not fail: %v\n%s", err, r.stderr)
	}
	r.status = exit.ExitCode()
	return r
}

// diesLikeAGoPanic: exit status 2, and the runtime's own message with the original,
// unscrubbed value and the panicking goroutine's frames.
func diesLikeAGoPanic(t *testing.T, r crashRun) {
	t.Helper()
	if r.status != 2 {
		t.Errorf("exit status %d, want 2 (a Go panic)\n%s", r.status, r.stderr)
	}
	want := "panic: cannot open " + filepath.Join(r.home, ".crashlike", "state.db") + " for alice@example.com: peer 10.20.30.40:7000 refused the handshake"
	if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "main.connect(") ||
		!strings.Contains(r.stderr, "[running]:") {
		t.Errorf("the runtime's crash output is not there (want %q and the frames):\n%s", want, r.stderr)
	}
}

func storedExceptions(t *testing.T, url string) []storedEvent {
	t.Helper()
	var rows []storedEvent
	getJSON(t, url+"/api/events?event=%24exception&limit=1000", &rows)
	return rows
}

func exceptionList(e storedEvent) []map[string]any {
	var out []map[string]any
	for _, x := range e.Properties["$exception_list"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func reportFrames(x map[string]any) []map[string]any {
	var out []map[string]any
	for _, f := range x["stacktrace"].(map[string]any)["frames"].([]any) {
		out = append(out, f.(map[string]any))
	}
	return out
}

// noPrivateData: none of what the program planted went out.
func noPrivateData(t *testing.T, r crashRun, value string) {
	t.Helper()
	for _, private := range []string{"alice@example.com", "10.20.30.40", r.home, "/.crashlike/"} {
		if strings.Contains(value, private) {
			t.Errorf("%q went out in %q", private, value)
		}
	}
	if !strings.Contains(value, "state.db") {
		t.Errorf("the file name was lost: %q", value)
	}
}

func TestCrashingProgram(t *testing.T) {
	bin := buildCrashlike(t)
	url := startCollector(t)

	t.Run("reports before it dies", func(t *testing.T) {
		r := crash(t, bin, []string{"-endpoint", url})
		diesLikeAGoPanic(t, r)
		// Read at once, without waiting: the child waited for delivery before dying.
		rows := storedExceptions(t, url)
		var fatal, handled []storedEvent
		for _, e := range rows {
			if e.Properties["$exception_level"] == "fatal" {
				fatal = append(fatal, e)
			} else {
				handled = append(handled, e)
			}
		}
		if len(fatal) != 1 || len(handled) != 1 {
			t.Fatalf("stored %d fatal and %d handled reports, want 1 and 1:\n%v\nthe program said:\n%s", len(fatal), len(handled), rows, r.stderr)
		}
		p := fatal[0].Properties
		x := exceptionList(fatal[0])[0]
		if x["type"] != "panic" || p["$exception_handled"] != false || p["product"] != "crashlike" || p["runtime"] != "go" {
			t.Errorf("the crash report: %v", p)
		}
		noPrivateData(t, r, x["value"].(string))
		frames := reportFrames(x)
		var names []string
		for _, f := range frames {
			names = append(names, f["function"].(string))
			if strings.ContainsAny(f["filename"].(string), `/\`) {
				t.Errorf("a directory went out: %v", f)
			}
		}
		want := []string{"runtime.main", "main.main", "main.replicate", ownPackage + ".(*Timing).Time", "main.replicate.func1", "main.connect"}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Fatalf("frames %v, want %v", names, want)
		}
		for i, inApp := range []bool{false, true, true, false, true, true} {
			if frames[i]["in_app"] != inApp {
				t.Errorf("%s: in_app %v, want %v", names[i], frames[i]["in_app"], inApp)
			}
		}
		if f := frames[5]; f["filename"] != "main.go" || f["lineno"] == nil {
			t.Errorf("the panicking frame %v", f)
		}

		// The handled error it reported first, with its chain.
		var types []string
		for _, c := range exceptionList(handled[0]) {
			types = append(types, c["type"].(string))
			value := c["value"].(string)
			for _, private := range []string{"alice@example.com", r.home} {
				if strings.Contains(value, private) {
					t.Errorf("%q went out in %q", private, value)
				}
			}
		}
		if got := strings.Join(types, " "); got != "*fmt.wrapError *errors.joinError *fs.PathError *errors.errorString *errors.errorString" {
			t.Errorf("the handled error's chain: %s", got)
		}
		// What it captured before the crash was handed over and delivered in the crash's wait.
		var started []storedEvent
		getJSON(t, url+"/api/events?event=service_started", &started)
		if len(started) != 1 {
			t.Errorf("%d service_started events", len(started))
		}
		// The collector groups the reports by fingerprint.
		var groups []struct {
			Fingerprint string   `json:"fingerprint"`
			Count       int      `json:"count"`
			Versions    []string `json:"versions"`
		}
		getJSON(t, url+"/api/errors?product=crashlike", &groups)
		found := false
		for _, g := range groups {
			if g.Fingerprint == p["$exception_fingerprint"] {
				found = g.Count == 1 && len(g.Versions) == 1 && g.Versions[0] == "1.4.0"
			}
		}
		if !found {
			t.Errorf("no group for the crash in %+v", groups)
		}
	})

	t.Run("in a goroutine", func(t *testing.T) {
		before := len(storedExceptions(t, url))
		r := crash(t, bin, []string{"-endpoint", url, "-goroutine"})
		diesLikeAGoPanic(t, r)
		rows := storedExceptions(t, url)
		if len(rows) != before+2 {
			t.Fatalf("%d new reports, want 2 (handled and fatal)", len(rows)-before)
		}
		var names []string
		for _, e := range rows[before:] {
			if e.Properties["$exception_level"] == "fatal" {
				for _, f := range reportFrames(exceptionList(e)[0]) {
					names = append(names, f["function"].(string))
				}
			}
		}
		if len(names) < 2 || names[0] != "main.main.func1" || names[len(names)-1] != "main.connect" {
			t.Errorf("frames %v", names)
		}
	})

	t.Run("opted out", func(t *testing.T) {
		var before summary
		getJSON(t, url+"/api/summary", &before)
		for _, env := range []string{"DO_NOT_TRACK=1", "CRASHLIKE_TELEMETRY_DISABLED=1"} {
			r := crash(t, bin, []string{"-endpoint", url}, env)
			diesLikeAGoPanic(t, r)
			if entries, err := os.ReadDir(r.home); err != nil || len(entries) != 0 {
				t.Errorf("%s: the program wrote into HOME: %v (%v)", env, entries, err)
			}
		}
		var after summary
		getJSON(t, url+"/api/summary", &after)
		if after.Events != before.Events {
			t.Errorf("opted out, %d events arrived", after.Events-before.Events)
		}
	})

	t.Run("endpoint down", func(t *testing.T) {
		// One that never answers (listening, never accepting), and one that refuses.
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		refused, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		refusedURL := "http://" + refused.Addr().String()
		refused.Close()
		const deadline = 700 * time.Millisecond
		live := crash(t, bin, []string{"-endpoint", url, "-deadline", deadline.String()})
		for _, down := range []struct {
			name, url string
		}{{"never answers", "http://" + silent.Addr().String()}, {"refuses", refusedURL}} {
			args := []string{"-endpoint", down.url, "-deadline", deadline.String()}
			baseline := crash(t, bin, args, "DO_NOT_TRACK=1")
			r := crash(t, bin, args)
			diesLikeAGoPanic(t, r)
			added := r.took - baseline.took
			t.Logf("endpoint %s (deadline %v): the program ran %v, %v opted out (%v more); from the panic to the exit %v, %v opted out; live endpoint: %v, %v",
				down.name, deadline, r.took, baseline.took, added, r.dying, baseline.dying, live.took, live.dying)
			if added > deadline+500*time.Millisecond || r.dying > deadline+300*time.Millisecond {
				t.Errorf("endpoint %s: the crash was delayed by %v (%v from the panic), the deadline is %v", down.name, added, r.dying, deadline)
			}
			if down.name == "never answers" && r.dying < deadline-50*time.Millisecond {
				t.Errorf("the crash did not wait for its report: %v from the panic to the exit", r.dying)
			}
		}
	})
}
