// Command posthog is ../plain with posthog-go capturing the same start event, for
// comparison with ../telemetry in `make size`.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/posthog/posthog-go"
)

func main() {
	client, err := posthog.NewWithConfig("phc_size_probe", posthog.Config{Endpoint: "http://127.0.0.1:9"})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	_ = client.Enqueue(posthog.Capture{DistinctId: "size-probe", Event: "server_start",
		Properties: posthog.Properties{"args": len(os.Args)}})
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hello") })
	if len(os.Args) > 1 {
		log.Fatal(http.ListenAndServe(os.Args[1], nil))
	}
}
