//go:build cgo

package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

// New resolves consent once, from the options, the environment and the profile's files.
// Here the user has set ANONYMIZED_TELEMETRY=False, Chroma's opt-out, so the client is off
// and nothing will ever be sent.
func ExampleNew() {
	client, err := telemetry.New(
		telemetry.WithProduct("chromadb", "1.3.0"),
		telemetry.WithProfile(telemetry.Chroma),
		telemetry.WithEndpoint("https://eu.i.posthog.com"),
		telemetry.WithAPIKey("phc_..."),
		// For the example: these variables instead of the process's.
		telemetry.WithEnvironment(map[string]string{"ANONYMIZED_TELEMETRY": "False"}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	d := client.Decision()
	fmt.Println(client.Enabled(), d.DecidedBy.Kind, d.DecidedBy.Name)
	// Output: false env ANONYMIZED_TELEMETRY
}

// Flush says whether what was captured before it was delivered.
func ExampleClient_Flush() {
	client, err := telemetry.New(
		telemetry.WithProduct("myapp", "1.2.0"),
		telemetry.WithSink(telemetry.SinkMemory), // a real program: WithEndpoint, WithAPIKey
		telemetry.WithEnvironment(map[string]string{}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	_ = client.Capture("query", map[string]any{"n_results": telemetry.Exact(10)})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch err := client.Flush(ctx); {
	case errors.Is(err, telemetry.ErrNotDelivered):
		fmt.Println("dropped:", err) // refused, out of retries or queue full
	case errors.Is(err, telemetry.ErrTimeout):
		fmt.Println("still queued; it goes out later")
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println("delivered:", client.Stats().Sent)
	}
	// Output: delivered: 1
}

// Close sends what is left within its context's deadline and frees the client; later
// captures are refused, the final stats stay readable.
func ExampleClient_Close() {
	client, err := telemetry.New(
		telemetry.WithProduct("myapp", "1.2.0"),
		telemetry.WithSink(telemetry.SinkMemory),
		telemetry.WithEnvironment(map[string]string{}),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = client.Capture("shutdown_started", nil)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Close(ctx); err != nil {
		fmt.Println(err)
	}
	s := client.Stats()
	fmt.Println(s.Captured, s.Sent, errors.Is(client.Capture("late", nil), telemetry.ErrShutDown))
	// Output: 1 1 true
}

// WithLogger hands the library's records to a log/slog logger. Here the value of
// ANONYMIZED_TELEMETRY is not understood, which means off, and New warns about it.
func ExampleWithLogger() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // for a stable example output
			}
			return a
		},
	}))
	client, err := telemetry.New(
		telemetry.WithProduct("chromadb", "1.3.0"),
		telemetry.WithProfile(telemetry.Chroma),
		telemetry.WithSink(telemetry.SinkMemory),
		telemetry.WithEnvironment(map[string]string{"ANONYMIZED_TELEMETRY": "maybe"}),
		telemetry.WithLogger(logger),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	fmt.Println("enabled:", client.Enabled())
	// Output:
	// level=WARN msg="telemetry: ANONYMIZED_TELEMETRY has an unrecognized value \"maybe\": telemetry is off" target=telemetry_core::client
	// enabled: false
}
