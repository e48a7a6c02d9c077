//go:build cgo

package telemetry

// The OTLP receiver (crates/otlp-receiver) as a child process: it decodes what the
// library exports with the official opentelemetry-proto definitions and serves the spans
// as JSON, so these tests check what an OTLP backend would see.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// receiver is a running otlp-receiver.
type receiver struct {
	HTTP string // 127.0.0.1:PORT: OTLP/HTTP and the control endpoints
	GRPC string // 127.0.0.1:PORT: OTLP/gRPC
}

// rxSpan is one span as the receiver decoded it (its ReceivedSpan).
type rxSpan struct {
	TraceID      string         `json:"trace_id"`
	SpanID       string         `json:"span_id"`
	ParentSpanID string         `json:"parent_span_id"`
	TraceState   string         `json:"trace_state"`
	Flags        uint32         `json:"flags"`
	Name         string         `json:"name"`
	Kind         string         `json:"kind"`
	Start        uint64         `json:"start_time_unix_nano"`
	End          uint64         `json:"end_time_unix_nano"`
	Attributes   map[string]any `json:"attributes"`
	Events       []struct {
		Name       string         `json:"name"`
		Time       uint64         `json:"time_unix_nano"`
		Attributes map[string]any `json:"attributes"`
	} `json:"events"`
	Status struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
	Resource  map[string]any    `json:"resource"`
	ScopeName string            `json:"scope_name"`
	Headers   map[string]string `json:"headers"`
	Protocol  string            `json:"protocol"`
	Gzip      bool              `json:"gzip"`
}

// startReceiver runs the binary named by OTLP_RECEIVER_BIN (the Makefile passes the one
// `make build` made) on free loopback ports. A missing binary fails the test: skipping
// would hide that the export path went untested.
func startReceiver(t *testing.T) *receiver {
	t.Helper()
	bin := os.Getenv("OTLP_RECEIVER_BIN")
	if bin == "" {
		t.Fatal("OTLP_RECEIVER_BIN is not set: run through `make test-go`, or point it at target/debug/otlp-receiver")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("receiver binary: %v (run `make build`)", err)
	}
	ready := filepath.Join(t.TempDir(), "ready.json")
	cmd := exec.Command(bin, "--ready-file", ready)
	var logs strings.Builder
	cmd.Stderr = &syncWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("receiver log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, err := os.ReadFile(ready)
		if err == nil {
			var r receiver
			var addrs struct{ HTTP, GRPC string }
			if err := json.Unmarshal(data, &addrs); err != nil {
				t.Fatalf("ready file %q: %v", data, err)
			}
			r.HTTP, r.GRPC = addrs.HTTP, addrs.GRPC
			return &r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver wrote no ready file in 20 s:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// httpEndpoint is the base URL an OTLP/HTTP exporter is given (/v1/traces is appended).
func (r *receiver) httpEndpoint() string { return "http://" + r.HTTP }

// grpcEndpoint is the URL an OTLP/gRPC exporter is given.
func (r *receiver) grpcEndpoint() string { return "http://" + r.GRPC }

func (r *receiver) spans(t *testing.T) []rxSpan {
	t.Helper()
	resp, err := http.Get("http://" + r.HTTP + "/spans")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var spans []rxSpan
	d := json.NewDecoder(resp.Body)
	d.UseNumber() // an integer attribute stays "3", a float "3.0"
	if err := d.Decode(&spans); err != nil {
		t.Fatal(err)
	}
	return spans
}

// waitSpans waits until at least n spans arrived (or timeout) and returns them.
func (r *receiver) waitSpans(t *testing.T, n int, timeout time.Duration) []rxSpan {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans := r.spans(t)
		if len(spans) >= n || time.Now().After(deadline) {
			return spans
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *receiver) tree(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + r.HTTP + "/tree")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

// fault makes the receiver answer export requests with fault (JSON, as its POST /fault
// takes it: {"kind":"status","http_status":503}, {"kind":"delay","ms":3000}, ...).
func (r *receiver) fault(t *testing.T, fault string) {
	t.Helper()
	resp, err := http.Post("http://"+r.HTTP+"/fault", "application/json", strings.NewReader(fault))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /fault %s: %s", fault, resp.Status)
	}
}

// byName indexes spans by name, failing on a duplicate.
func byName(t *testing.T, spans []rxSpan) map[string]rxSpan {
	t.Helper()
	out := map[string]rxSpan{}
	for _, s := range spans {
		if _, dup := out[s.Name]; dup {
			t.Errorf("two spans named %q", s.Name)
		}
		out[s.Name] = s
	}
	return out
}

func names(spans []rxSpan) string {
	var n []string
	for _, s := range spans {
		n = append(n, fmt.Sprintf("%s(%s<-%s)", s.Name, s.SpanID, s.ParentSpanID))
	}
	return strings.Join(n, ", ")
}
