// Command plain is the reference for `make size`: a net/http server that answers
// "hello". The programs beside it are this one plus one telemetry library each, so the
// difference in their stripped sizes is what that library costs a Go program.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hello") })
	if len(os.Args) > 1 {
		log.Fatal(http.ListenAndServe(os.Args[1], nil))
	}
}
