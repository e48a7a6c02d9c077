// The soak's Go client (tests/soak/README.md): goroutines capture plain and batched
// events for SOAK_SECONDS while the main goroutine flushes every SOAK_FLUSH_EVERY seconds
// and starts a child process every SOAK_FORK_EVERY seconds. A Go program cannot fork, so
// the child is this program run again with SOAK_ROLE=child: a client of its own that
// captures, flushes, closes and writes its counters, as a forked child would. Every event
// carries soak_client (the process's tag), so the driver can count what the collector
// stored for each process.
//
// Protocol with the driver (tests/soak/soak.py): "ready" on stdout once the client is
// built (nothing started yet: the baseline), "done" after the final Close and once the
// results file (SOAK_RESULTS/<tag>.json) is written; the process exits when stdin closes.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(strings.TrimSpace(os.Getenv(name)), 64); err == nil {
		return v
	}
	return def
}

func envSecs(name string, def float64) time.Duration {
	return time.Duration(envFloat(name, def) * float64(time.Second))
}

// resources are this process's open descriptors, threads and resident memory (KiB).
type resources struct {
	FDs     int `json:"fds"`
	Threads int `json:"threads"`
	// LibThreads are the threads the library named (telemetry-worker, ...).
	LibThreads int   `json:"lib_threads"`
	RSSKB      int64 `json:"rss_kb"`
	// What of the RSS is Go's: the heap in use and all the runtime holds, and its GCs.
	GoHeapKB uint64 `json:"go_heap_kb"`
	GoSysKB  uint64 `json:"go_sys_kb"`
	GoGCs    uint32 `json:"go_gcs"`
}

func count(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := len(entries)
	if strings.HasSuffix(dir, "/fd") {
		n-- // the directory's own descriptor, open while it was read
	}
	return n
}

func measure() resources {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := resources{FDs: count("/proc/self/fd"), Threads: count("/proc/self/task"),
		GoHeapKB: ms.HeapInuse >> 10, GoSysKB: (ms.Sys - ms.HeapReleased) >> 10, GoGCs: ms.NumGC}
	if tasks, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, t := range tasks {
			if comm, err := os.ReadFile(filepath.Join("/proc/self/task", t.Name(), "comm")); err == nil && strings.HasPrefix(string(comm), "telemetry-") {
				r.LibThreads++
			}
		}
	}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				r.RSSKB, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			}
		}
	}
	return r
}

// settle waits (at most SOAK_SETTLE seconds) until the library's threads are gone and
// the descriptors are back at before: a shutdown that reached its deadline returns while
// the worker may still wait for the request it had sent (up to the request timeout). The
// total of threads is not waited for: Go's runtime keeps the threads it made.
func settle(before resources) (resources, float64) {
	limit := envSecs("SOAK_SETTLE", 7)
	started := time.Now()
	for {
		now := measure()
		if (now.LibThreads == 0 && now.FDs == before.FDs) || time.Since(started) >= limit {
			return now, time.Since(started).Seconds()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type captured struct{ plain, batched atomic.Uint64 }

func captureOne(c *telemetry.Client, tag string, n uint64, counts *captured) {
	if n%2 == 0 {
		_ = c.CaptureEvent(telemetry.Event{
			Name:       "soak_batched",
			Properties: map[string]any{"soak_client": telemetry.Safe(tag), "amount": telemetry.Exact(1)},
			Batch:      &telemetry.BatchRule{Key: fmt.Sprintf("%s-b%d", tag, n%3), MaxSize: 50, Sum: []string{"amount"}},
		})
		counts.batched.Add(1)
		return
	}
	_ = c.Capture("soak_plain", map[string]any{
		"soak_client": telemetry.Safe(tag),
		"seq":         telemetry.Exact(n),
		"note":        telemetry.Text("soak from /home/someone/work at 10.1.2.3"),
	})
	counts.plain.Add(1)
}

func newClient(home string) *telemetry.Client {
	c, err := telemetry.New(
		telemetry.WithProduct("soak", "1.0.0"),
		telemetry.WithEndpoint(env("SOAK_ENDPOINT", "http://127.0.0.1:9")),
		telemetry.WithAPIKey("phc_soak"),
		telemetry.WithEnvironment(map[string]string{"HOME": home}),
		telemetry.WithWorkingDir(home),
		telemetry.WithExplicit(true),
		telemetry.WithUsageReports(false),
		telemetry.WithFlushInterval(time.Second),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak-go-client: %v\n", err)
		os.Exit(2)
	}
	return c
}

func writeResults(tag string, v map[string]any) error {
	dir := env("SOAK_RESULTS", ".")
	text, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+tag+".json.tmp")
	if err := os.WriteFile(tmp, text, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, tag+".json"))
}

// closeClient closes c within deadline and says how long it took.
func closeClient(c *telemetry.Client, deadline time.Duration) (telemetry.Stats, float64, string) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	started := time.Now()
	err := c.Close(ctx)
	took := time.Since(started).Seconds()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return c.Stats(), took, msg
}

func child(tag, home string) {
	measure() // the first file opened starts the runtime's poller (an epoll and an eventfd)
	before := measure()
	c := newClient(home)
	var counts captured
	events := uint64(envFloat("SOAK_CHILD_EVENTS", 40))
	for n := uint64(0); n < events; n++ {
		captureOne(c, tag, n, &counts)
		if n%10 == 9 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	flushed := c.Flush(ctx) == nil
	cancel()
	deadline := envSecs("SOAK_CHILD_SHUTDOWN", 2)
	stats, took, closeErr := closeClient(c, deadline)
	after, settled := settle(before)
	ok, not := 0, 0
	if flushed {
		ok = 1
	} else {
		not = 1
	}
	err := writeResults(tag, map[string]any{
		"tag": tag, "lang": "go", "role": "child", "pid": os.Getpid(), "enabled": c.Enabled(),
		"captured_plain": counts.plain.Load(), "captured_batched": counts.batched.Load(),
		"stats": stats, "shutdown_seconds": took, "shutdown_deadline": deadline.Seconds(), "settle_seconds": settled,
		"close_error": closeErr, "flushes": map[string]int{"ok": ok, "not_delivered": not},
		"before": before, "after": after,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak-go-client: %v\n", err)
		os.Exit(1)
	}
}

func main() {
	tag := env("SOAK_TAG", "go")
	home := env("SOAK_HOME", ".")
	if os.Getenv("SOAK_ROLE") == "child" {
		child(tag, home)
		return
	}
	seconds := envSecs("SOAK_SECONDS", 60)
	rate := envFloat("SOAK_RATE", 100)
	threads := int(envFloat("SOAK_THREADS", 2))
	forkEvery := envSecs("SOAK_FORK_EVERY", 5)
	flushEvery := envSecs("SOAK_FLUSH_EVERY", 5)
	deadline := envSecs("SOAK_SHUTDOWN", 5)
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak-go-client: %v\n", err)
		os.Exit(2)
	}

	c := newClient(home)
	// The runtime's lazily made threads and descriptors for starting processes exist
	// before the baseline, so the baseline is the library's "nothing started" state.
	_ = exec.Command("/bin/true").Run()
	before := measure()
	fmt.Printf("ready %d\n", os.Getpid())

	var counts captured
	var stop atomic.Bool
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			period := time.Duration(float64(time.Second) / max(rate, 1))
			next := time.Now()
			for n := uint64(t); !stop.Load(); n += uint64(threads) {
				captureOne(c, tag, n, &counts)
				next = next.Add(period)
				if wait := time.Until(next); wait > 0 {
					time.Sleep(wait)
				} else if wait < -time.Second {
					next = time.Now() // fell behind: do not burst to catch up
				}
			}
		}(t)
	}

	var children sync.WaitGroup
	var started, startFailures, failed atomic.Uint64
	begin := time.Now()
	nextFork := begin.Add(forkEvery / 2)
	nextFlush := begin.Add(flushEvery)
	nextMem := begin
	flushOK, flushNot := 0, 0
	for time.Since(begin) < seconds {
		now := time.Now()
		if !now.Before(nextFork) {
			nextFork = now.Add(forkEvery)
			k := started.Add(1)
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), "SOAK_ROLE=child", fmt.Sprintf("SOAK_TAG=%s-c%d", tag, k))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				startFailures.Add(1)
			} else {
				children.Add(1)
				go func() {
					defer children.Done()
					if cmd.Wait() != nil {
						failed.Add(1)
					}
				}()
			}
		}
		if !now.Before(nextMem) {
			// Go's share of the RSS for the driver: heap in use, all the runtime holds, its
			// GCs, and the RSS read at the same moment.
			m := measure()
			fmt.Printf("mem %d %d %d %d\n", m.GoHeapKB, m.GoSysKB, m.GoGCs, m.RSSKB)
			nextMem = now.Add(time.Second)
		}
		if !now.Before(nextFlush) {
			timeout := time.Duration(1000+rand.IntN(3000)) * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			if c.Flush(ctx) == nil {
				flushOK++
			} else {
				flushNot++
			}
			cancel()
			nextFlush = time.Now().Add(flushEvery)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	stats, took, closeErr := closeClient(c, deadline)
	children.Wait()
	after, settled := settle(before)
	err = writeResults(tag, map[string]any{
		"tag": tag, "lang": "go", "role": "main", "pid": os.Getpid(), "enabled": c.Enabled(),
		"captured_plain": counts.plain.Load(), "captured_batched": counts.batched.Load(),
		"stats": stats, "shutdown_seconds": took, "shutdown_deadline": deadline.Seconds(), "settle_seconds": settled,
		"close_error": closeErr, "flushes": map[string]int{"ok": flushOK, "not_delivered": flushNot},
		"children": map[string]uint64{"started": started.Load(), "start_failures": startFailures.Load(), "failed": failed.Load()},
		"before":   before, "after": after,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak-go-client: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("done")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the driver has sampled the end state
}
