//go:build cgo

package telemetry

// End to end: this package, the C ABI and the core deliver to the real local collector
// (crates/telemetry-collector) over loopback HTTP, and the collector's API shows exactly
// what was captured.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startCollector runs the collector binary named by TELEMETRY_COLLECTOR_BIN (the Makefile
// passes the one `make build` made) on a free loopback port and returns its URL. A missing
// binary fails the test: skipping would hide that the end-to-end path went untested.
func startCollector(t *testing.T) string {
	t.Helper()
	return startCollectorWith(t)
}

// startCollectorWith is startCollector with more arguments for `serve` (--tls-cert ...).
func startCollectorWith(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("TELEMETRY_COLLECTOR_BIN")
	if bin == "" {
		t.Fatal("TELEMETRY_COLLECTOR_BIN is not set: run through `make test-go`, or point it at target/debug/telemetry-collector")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("collector binary: %v (run `make build`)", err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "events.db")}, args...)...)
	var logs strings.Builder // shown only when the test fails
	cmd.Stderr = &syncWriter{w: &logs}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("collector log:\n%s", logs.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the collector printed no address: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	return url
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type eventCounts struct {
	Events         int64 `json:"events"`
	BatchSizeTotal int64 `json:"batch_size_total"`
}

type summary struct {
	Events    int64                  `json:"events"`
	ByEvent   map[string]eventCounts `json:"by_event"`
	Instances int64                  `json:"instances"`
}

type storedEvent struct {
	Event      string         `json:"event"`
	DistinctID string         `json:"distinct_id"`
	Properties map[string]any `json:"properties"`
}

func TestEndToEndAgainstTheLocalCollector(t *testing.T) {
	url := startCollector(t)
	home := t.TempDir()
	client, err := New(
		WithProduct("chromalike-go", "0.9.0"),
		WithProfile(Chroma),
		WithEndpoint(url),
		WithAPIKey("phc_e2e"),
		WithEnvironment(map[string]string{"HOME": home}),
		WithWorkingDir(t.TempDir()),
		WithMaxBatchEvents(50),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !client.Enabled() {
		t.Fatalf("off:\n%s", client.Decision())
	}
	if err := client.Capture("client_start", map[string]any{"is_persistent": Safe(true), "collection": "docs"}); err != nil {
		t.Fatal(err)
	}
	const goroutines, queries, adds = 8, 50, 25
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < queries; i++ {
				_ = client.CaptureEvent(Event{
					Name:       "collection_query",
					Properties: map[string]any{"collection_uuid": Hashed("c1"), "query_amount": 2},
					Batch:      &BatchRule{Key: "c1collection_query", MaxSize: 20, Sum: []string{"query_amount"}},
				})
				if i < adds {
					_ = client.Capture("collection_add", map[string]any{"g": Safe(g)})
				}
			}
		}(g)
	}
	wg.Wait()
	if err := client.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	total := uint64(1 + goroutines*queries + goroutines*adds)
	if s := client.Stats(); s.Captured != total || s.Sent != total {
		t.Fatalf("stats %+v, want %d captured and sent", s, total)
	}

	var sum summary
	getJSON(t, url+"/api/summary", &sum)
	if c := sum.ByEvent["client_start"]; c.Events != 1 {
		t.Errorf("client_start: %+v", c)
	}
	if c := sum.ByEvent["collection_add"]; c.Events != goroutines*adds {
		t.Errorf("collection_add: %+v, want %d rows", c, goroutines*adds)
	}
	// 400 queries under one batch key: the first alone, then merged by 20; a merged row
	// stands for batch_size queries, so the total is exact whatever the grouping.
	q := sum.ByEvent["collection_query"]
	if q.BatchSizeTotal != goroutines*queries || q.Events < 21 || q.Events >= goroutines*queries {
		t.Errorf("collection_query: %+v, want batch_size_total %d in at least 21 merged rows", q, goroutines*queries)
	}
	if sum.Instances != 1 {
		t.Errorf("%d instances", sum.Instances)
	}

	var rows []storedEvent
	getJSON(t, url+"/api/events?event=collection_query&limit=1000", &rows)
	amount := 0.0
	for _, r := range rows {
		amount += r.Properties["query_amount"].(float64)
		if h, _ := r.Properties["collection_uuid"].(string); len(h) != 16 || h == "c1" {
			t.Errorf("collection_uuid not hashed: %v", r.Properties["collection_uuid"])
		}
	}
	if amount != 2*goroutines*queries {
		t.Errorf("query_amount adds up to %v, want %d", amount, 2*goroutines*queries)
	}

	var starts []storedEvent
	getJSON(t, url+"/api/events?event=client_start", &starts)
	if len(starts) != 1 {
		t.Fatalf("%d client_start events", len(starts))
	}
	p := starts[0].Properties
	if p["is_persistent"] != true || p["runtime"] != "go" || p["$lib"] != "telemetry-core" || p["product"] != "chromalike-go" {
		t.Errorf("properties %v", p)
	}
	if p["collection"] == "docs" {
		t.Errorf("an undeclared string went out in clear")
	}
	// Chroma's convention: the install id is the UUID stored in ~/.cache/chroma.
	id, err := os.ReadFile(filepath.Join(home, ".cache", "chroma", "telemetry_user_id"))
	if err != nil || strings.TrimSpace(string(id)) != starts[0].DistinctID {
		t.Errorf("distinct_id %q, stored id %q (%v)", starts[0].DistinctID, id, err)
	}
}

func ExampleClient_Capture() {
	client, err := New(
		WithProduct("myapp", "1.2.0"),
		WithProfile(Chroma),
		WithSink(SinkMemory), // a real program: WithEndpoint(...), WithAPIKey(...)
		WithEnvironment(map[string]string{}),
	)
	if err != nil {
		panic(err)
	}
	defer client.Close(context.Background())
	_ = client.Capture("client_start", map[string]any{
		"is_persistent": Safe(false),
		"collections":   Exact(3),
	})
	_ = client.Flush(context.Background())
	events, _ := client.MemoryEvents()
	p := events[0]["properties"].(map[string]any)
	fmt.Println(events[0]["event"], p["is_persistent"], p["collections"])
	// Output: client_start false 3
}
