// Command telemetry is ../plain with telemetry-core: a client that captures an event at
// start, times each request (usage statistics), reports panics and traces requests, so
// every default part of the library is linked, as a product using it would link it.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

func main() {
	tel, err := telemetry.New(telemetry.WithProduct("size-probe", "0.1.0"), telemetry.WithSink(telemetry.SinkDebug))
	if err != nil {
		log.Fatal(err)
	}
	defer tel.ReportPanic()
	defer func() { _ = tel.Close(context.Background()) }()
	_ = tel.Capture("server_start", map[string]any{"args": len(os.Args)})
	requests, err := tel.Usage().Counter("requests")
	if err != nil {
		log.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = requests.Add(1)
		fmt.Fprintln(w, "hello")
	})
	http.Handle("/", tel.HTTPHandler(hello))
	if len(os.Args) > 1 {
		log.Fatal(http.ListenAndServe(os.Args[1], nil))
	}
}
