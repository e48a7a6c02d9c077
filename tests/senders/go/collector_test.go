package senders

// The real collector as a child process, and its read API. The binary comes from
// TELEMETRY_COLLECTOR_BIN (`make test-senders` sets it to target/debug/telemetry-collector).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// collector is one collector database, served by one process at a time: stop and start
// again on the same address and database to simulate a restart.
type collector struct {
	t    *testing.T
	bin  string
	db   string
	addr string // host:port once started
	url  string // http://host:port

	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer // stderr of every run, shown when the test fails
}

// startCollector starts the collector on a free loopback port with a fresh database.
func startCollector(t *testing.T) *collector {
	t.Helper()
	bin := os.Getenv("TELEMETRY_COLLECTOR_BIN")
	if bin == "" {
		t.Fatal("TELEMETRY_COLLECTOR_BIN is not set: run `make test-senders`, or point it at target/debug/telemetry-collector (cargo build -p telemetry-collector)")
	}
	if info, err := os.Stat(bin); err != nil || info.IsDir() {
		t.Fatalf("TELEMETRY_COLLECTOR_BIN=%s is not a file (%v): build it with `cargo build -p telemetry-collector`", bin, err)
	}
	c := &collector{
		t:    t,
		bin:  bin,
		db:   filepath.Join(t.TempDir(), "events.db"),
		logs: &syncBuffer{},
	}
	c.start("127.0.0.1:0")
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("collector stderr:\n%s", c.logs.String())
		}
	})
	return c
}

// start runs the collector on listen ("127.0.0.1:0" or the address of a previous run).
func (c *collector) start(listen string) {
	c.t.Helper()
	// A restart may find the port still held for a moment by the process that just exited.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.tryStart(listen)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("collector did not start on %s: %v\nstderr:\n%s", listen, err, c.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *collector) tryStart(listen string) error {
	cmd := exec.Command(c.bin, "serve", "--listen", listen, "--db", c.db)
	cmd.Env = append(os.Environ(), "RUST_LOG=debug") // every request in the log shown on failure
	cmd.Stderr = c.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("no `listening on` line within 10 s")
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("unexpected first stdout line %q", line)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("bad address %q: %v", u, err)
	}
	c.cmd, c.done, c.url, c.addr = cmd, done, u, parsed.Host
	return nil
}

// stop sends SIGTERM (the collector answers what is in flight and exits 0) and waits.
func (c *collector) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		c.t.Errorf("the collector did not exit within 10 s of SIGTERM")
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Errorf("the collector exited with %d after SIGTERM", code)
	}
	c.cmd = nil
}

// storedEvent is one item of GET /api/events.
type storedEvent struct {
	UUID       string         `json:"uuid"`
	Event      string         `json:"event"`
	DistinctID string         `json:"distinct_id"`
	Timestamp  string         `json:"timestamp"`
	ReceivedAt string         `json:"received_at"`
	Properties map[string]any `json:"properties"`
}

// events lists every stored event, oldest first. Numbers stay json.Number, so large
// integers and decimals compare exactly.
func (c *collector) events() []storedEvent {
	c.t.Helper()
	resp, err := http.Get(c.url + "/api/events?limit=10000")
	if err != nil {
		c.t.Fatalf("GET /api/events: %v", err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		c.t.Fatalf("GET /api/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /api/events: %s %s", resp.Status, body.String())
	}
	dec := json.NewDecoder(&body)
	dec.UseNumber()
	var events []storedEvent
	if err := dec.Decode(&events); err != nil {
		c.t.Fatalf("GET /api/events: %v in %s", err, body.String())
	}
	return events
}

// waitForEvents polls until at least n events are stored, and returns them.
func (c *collector) waitForEvents(n int, timeout time.Duration) []storedEvent {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		events := c.events()
		if len(events) >= n || time.Now().After(deadline) {
			return events
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
