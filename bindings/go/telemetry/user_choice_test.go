//go:build cgo

package telemetry

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// runTelemetryCLI runs the real `telemetry` command (TELEMETRY_CLI_BIN, set by the
// Makefile) with an isolated HOME, as a person would type it.
func runTelemetryCLI(t *testing.T, home string, args ...string) {
	t.Helper()
	bin := os.Getenv("TELEMETRY_CLI_BIN")
	if bin == "" {
		t.Fatal("TELEMETRY_CLI_BIN is not set: run through `make test-go`, or point it at target/debug/telemetry")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("telemetry %v: %v\n%s", args, err, out)
	}
}

// TestTheUsersSavedChoiceIsHonouredOnTheNextStart: `telemetry disable` turns a Go client
// off at its next start, and `telemetry enable` turns it back on.
func TestTheUsersSavedChoiceIsHonouredOnTheNextStart(t *testing.T) {
	home := t.TempDir()
	start := func() *Client {
		c, err := New(WithProduct("gotest", "1.0.0"), WithProfile(Chroma), WithSink(SinkMemory),
			WithWorkingDir(home), WithEnvironment(map[string]string{"HOME": home}))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	if !start().Enabled() {
		t.Fatal("chroma is on by default")
	}

	runTelemetryCLI(t, home, "disable", "--profile", "chroma")
	off := start()
	d := off.Decision()
	if off.Enabled() || d.DecidedBy == nil || d.DecidedBy.Kind != "user_choice" {
		t.Fatalf("after `telemetry disable` the client must be off by user_choice: %+v", d)
	}

	runTelemetryCLI(t, home, "enable", "--profile", "chroma")
	on := start()
	if !on.Enabled() || on.Decision().DecidedBy.Kind != "user_choice" {
		t.Fatalf("after `telemetry enable` the client must be on by user_choice: %+v", on.Decision())
	}
}
