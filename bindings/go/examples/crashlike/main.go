// Command crashlike crashes on purpose, for the Go crash-report tests and `make demo`: a
// small service that reports a handled error, then panics inside a timed operation, with
// `defer client.ReportPanic()` at the top of main (or of the goroutine that panics, with
// -goroutine). The report reaches the collector at -endpoint before the program dies, and
// the program dies as it would without telemetry: exit status 2 and the runtime's panic
// message with the original value on stderr.
//
//	go run ./examples/crashlike -endpoint http://127.0.0.1:8765
//
// CRASHLIKE_TELEMETRY_DISABLED=1 or DO_NOT_TRACK=1 opts out: the same death, nothing sent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

// errNoSchema is what the store's schema check wraps.
var errNoSchema = errors.New("schema version table missing")

// store is where the service keeps its data: a path under the user's home, which must
// never leave the machine (the report's message is scrubbed).
func store() string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/home/alice"
	}
	return filepath.Join(home, ".crashlike", "state.db")
}

// migrate fails in a way the service handles: a wrapped chain with a joined branch.
func migrate() error {
	check := errors.Join(&fs.PathError{Op: "open", Path: store(), Err: fs.ErrNotExist}, errNoSchema)
	return fmt.Errorf("migrate %s for alice@example.com: %w", store(), check)
}

// connect is where it crashes: private data in the panic's value, as in real crashes.
//
//go:noinline
func connect(peer string) error {
	panic(fmt.Sprintf("cannot open %s for alice@example.com: peer %s refused the handshake", store(), peer))
}

// replicate times the connection, so the panic passes through the telemetry package's
// frames (another module's: not in_app) on its way up.
//
//go:noinline
func replicate(timing *telemetry.Timing, peer string) error {
	return timing.Time(func() error { return connect(peer) })
}

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:8765", "the PostHog-compatible collector")
	deadline := flag.Duration("deadline", telemetry.DefaultCrashDeadline, "how long the crash waits for its report at most")
	inGoroutine := flag.Bool("goroutine", false, "panic in a goroutine of its own instead of main")
	flag.Parse()

	client, err := telemetry.New(
		telemetry.WithProduct("crashlike", "1.4.0"),
		telemetry.WithProfile(telemetry.ProductProfile("crashlike")),
		telemetry.WithEndpoint(*endpoint),
		telemetry.WithAPIKey("phc_local_demo"),
		telemetry.WithCrashDeadline(*deadline),
		telemetry.WithUsageReports(false),
	)
	if err != nil {
		log.Fatal(err)
	}
	// Close first, ReportPanic second: deferred calls run last first, so the crash is
	// reported before Close, which then waits only what is left of the deadline.
	defer client.Close(context.Background())
	defer client.ReportPanic()

	_ = client.Capture("service_started", map[string]any{"mode": telemetry.Safe("replica")})
	if err := migrate(); err != nil {
		log.Printf("crashlike: %v (carrying on)", err)
		_, _ = client.CaptureError(err)
	}
	family, err := client.Usage().Timing("replication")
	if err != nil {
		log.Fatal(err)
	}
	timing, err := family.With()
	if err != nil {
		log.Fatal(err)
	}

	fmt.Fprintf(os.Stderr, "crashlike: crashing at %s\n", time.Now().Format(time.RFC3339Nano))
	if *inGoroutine {
		go func() {
			defer client.ReportPanic() // a panic is seen only by its own goroutine's defers
			_ = replicate(timing, "10.20.30.40:7000")
		}()
		select {} // the goroutine's panic ends the program
	}
	_ = replicate(timing, "10.20.30.40:7000")
}
