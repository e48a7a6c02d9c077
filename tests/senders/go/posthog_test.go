package senders

// PostHog's official Go SDK (github.com/posthog/posthog-go) sending to the real collector.
//
// What posthog-go v1.5.2 sends (posthog.go upload(), capture.go APIfy()):
// POST {Endpoint}/batch/, Content-Type: application/json, no compression, User-Agent
// posthog-go/<version>, body {"api_key", "historical_migration": false, "batch": [...]} where
// each item is {"type": "capture", "uuid", "library", "library_version", "timestamp",
// "distinct_id", "event", "properties", "send_feature_flags": false}. properties gain
// "$lib": "posthog-go" and "$lib_version", plus "$groups" when Groups is set. "uuid" is the
// empty string unless Capture.Uuid is set (PostHog's capture reads "" as no uuid), and
// "timestamp" is time.Time's RFC 3339 with nanoseconds. Any status >= 300 or transport error is
// retried (10 attempts, Config.RetryAfter between them) with the same body; Close() sends
// what is queued, waits for requests in flight, and drops batches still waiting to retry.
// Under `go test` the SDK reports its version as "1.0.0" (version.go: getVersion looks for
// the test.v flag), in $lib_version and in the User-Agent alike.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthog/posthog-go"
)

const apiKey = "phc_sender_test_go"

// newUUID returns a random UUIDv4 string.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// recorder is the SDK's Callback and Logger: which messages it reports sent or dropped,
// and what it logged.
type recorder struct {
	t         *testing.T
	mu        sync.Mutex
	succeeded []posthog.APIMessage
	failed    []string
	errors    []string
}

func (r *recorder) Success(m posthog.APIMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.succeeded = append(r.succeeded, m)
}

func (r *recorder) Failure(m posthog.APIMessage, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, fmt.Sprintf("%+v: %v", m, err))
}

func (r *recorder) Logf(format string, args ...any) {
	r.t.Logf("posthog-go: "+format, args...)
}

func (r *recorder) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.errors = append(r.errors, msg)
	r.mu.Unlock()
	r.t.Logf("posthog-go error: %s", msg)
}

func (r *recorder) counts() (succeeded, failed, errors int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.succeeded), len(r.failed), len(r.errors)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func newClient(t *testing.T, endpoint string, rec *recorder, config posthog.Config) posthog.Client {
	t.Helper()
	config.Endpoint = endpoint
	config.Callback = rec
	config.Logger = rec
	client, err := posthog.NewWithConfig(apiKey, config)
	if err != nil {
		t.Fatalf("posthog.NewWithConfig: %v", err)
	}
	return client
}

// jsonValue is v as the collector's JSON gives it back (numbers as json.Number).
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	text, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkProperties asserts that stored holds every property sent, unchanged, and what
// posthog-go adds itself.
func checkProperties(t *testing.T, name string, stored map[string]any, sent posthog.Properties) {
	t.Helper()
	for key, want := range sent {
		got, ok := stored[key]
		if !ok {
			t.Errorf("%s: property %q missing; stored %v", name, key, stored)
			continue
		}
		if w := jsonValue(t, want); !reflect.DeepEqual(got, w) {
			t.Errorf("%s: property %q = %#v, sent %#v", name, key, got, w)
		}
	}
	if got := stored["$lib"]; got != "posthog-go" {
		t.Errorf("%s: $lib = %#v, want posthog-go", name, got)
	}
	// getVersion() says "1.0.0" inside any test binary, posthog.Version otherwise.
	if got := stored["$lib_version"]; got != posthog.Version && got != "1.0.0" {
		t.Errorf("%s: $lib_version = %#v, want %q (or 1.0.0 under go test)", name, got, posthog.Version)
	}
}

// TestPosthogGoCapture sends a variety of events, each with an explicit uuid, in several
// batches, and finds every one stored once with its properties, distinct id and timestamp.
func TestPosthogGoCapture(t *testing.T) {
	c := startCollector(t)
	rec := &recorder{t: t}
	client := newClient(t, c.url, rec, posthog.Config{
		BatchSize:              3,
		Interval:               50 * time.Millisecond,
		RetryAfter:             func(int) time.Duration { return 50 * time.Millisecond },
		DefaultEventProperties: posthog.NewProperties().Set("deployment", "ci"),
	})

	explicitTime := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	upperUUID := strings.ToUpper(newUUID())
	type sent struct {
		msg        posthog.Capture
		properties posthog.Properties // what must be stored besides $lib and $lib_version
	}
	captures := []sent{
		{msg: posthog.Capture{Event: "server_start", DistinctId: "install-go-1", Properties: posthog.NewProperties().
			Set("product", "chroma").Set("product_version", "0.5.0").Set("os", "linux").
			Set("count", 42).Set("negative", -7).Set("ratio", 0.125).Set("big", int64(9007199254740993)).
			Set("zero", 0).Set("enabled", true).Set("missing", nil)}},
		{msg: posthog.Capture{Event: "collection_add", DistinctId: "install-go-1", Properties: posthog.NewProperties().
			Set("batch_size", 100).Set("collection", "my_collection").Set("embedding_dims", 384)}},
		{msg: posthog.Capture{Event: "unicode_ünïcødé_事件", DistinctId: "install-go-2 ünï 🚀", Properties: posthog.NewProperties().
			Set("text", "naïve café — 日本語 — שלום — 🚀🎉").
			Set("escapes", "line1\nline2\t\"quoted\" \\ back / slash").
			Set("ключ", "значение")}},
		{msg: posthog.Capture{Event: "nested_objects", DistinctId: "install-go-1", Properties: posthog.NewProperties().
			Set("config", map[string]any{
				"hnsw": map[string]any{"m": 16, "ef": 100.5, "space": "cosine"},
				"list": []any{1, "two", 3.25, true, nil, map[string]any{"deep": []any{}}},
				"none": map[string]any{},
			}).Set("tags", []string{"a", "b", "ç"})}},
		{msg: posthog.Capture{Event: "with_timestamp", DistinctId: "install-go-1", Timestamp: explicitTime,
			Properties: posthog.NewProperties().Set("when", "explicit")}},
		{msg: posthog.Capture{Event: "with_groups", DistinctId: "install-go-1",
			Groups: posthog.NewGroups().Set("company", "acme"), Properties: posthog.NewProperties().Set("plan", "free")}},
		{msg: posthog.Capture{Event: "upper_case_uuid", DistinctId: "install-go-1", Uuid: upperUUID}},
		{msg: posthog.Capture{Event: "no_properties", DistinctId: "install-go-3"}},
	}
	byUUID := map[string]*sent{}
	for i := range captures {
		s := &captures[i]
		if s.msg.Uuid == "" {
			s.msg.Uuid = newUUID()
		}
		s.properties = posthog.NewProperties().Merge(s.msg.Properties).Set("deployment", "ci")
		if s.msg.Groups != nil {
			s.properties.Set("$groups", s.msg.Groups)
		}
		byUUID[strings.ToLower(s.msg.Uuid)] = s
		if err := client.Enqueue(s.msg); err != nil {
			t.Fatalf("Enqueue(%s): %v", s.msg.Event, err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	succeeded, failed, _ := rec.counts()
	if failed != 0 || succeeded != len(captures) {
		t.Errorf("posthog-go reports %d sent and %d dropped of %d: %v", succeeded, failed, len(captures), rec.failed)
	}
	events := c.events()
	if len(events) != len(captures) {
		t.Errorf("stored %d events, sent %d", len(events), len(captures))
	}
	seen := map[string]int{}
	for _, e := range events {
		seen[e.UUID]++
		s, ok := byUUID[e.UUID]
		if !ok {
			t.Errorf("stored an event that was not sent (or with its uuid changed): %+v", e)
			continue
		}
		if e.Event != s.msg.Event || e.DistinctID != s.msg.DistinctId {
			t.Errorf("stored %q for %q, sent %q for %q", e.Event, e.DistinctID, s.msg.Event, s.msg.DistinctId)
		}
		checkProperties(t, s.msg.Event, e.Properties, s.properties)
		if s.msg.Event == "with_timestamp" {
			ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
			if err != nil || !ts.Equal(explicitTime) {
				t.Errorf("with_timestamp: stored timestamp %q, sent %s", e.Timestamp, explicitTime.Format(time.RFC3339Nano))
			}
		}
	}
	for id, s := range byUUID {
		if seen[id] != 1 {
			t.Errorf("%s (uuid %s) stored %d times, want once", s.msg.Event, id, seen[id])
		}
	}
	if seen[strings.ToLower(upperUUID)] != 1 {
		t.Errorf("the upper-case uuid %s was not stored lower-case", upperUUID)
	}
}

// TestPosthogGoCaptureWithoutUUID is posthog-go's default: Capture.Uuid unset, so the SDK
// sends "uuid": "" and the collector assigns one, as PostHog's capture does.
func TestPosthogGoCaptureWithoutUUID(t *testing.T) {
	c := startCollector(t)
	rec := &recorder{t: t}
	client := newClient(t, c.url, rec, posthog.Config{
		BatchSize:  2,
		Interval:   50 * time.Millisecond,
		RetryAfter: func(int) time.Duration { return 50 * time.Millisecond },
	})
	names := []string{"default_uuid_a", "default_uuid_b", "default_uuid_c"}
	for i, name := range names {
		err := client.Enqueue(posthog.Capture{Event: name, DistinctId: "install-go-default",
			Properties: posthog.NewProperties().Set("index", i).Set("text", "ü")})
		if err != nil {
			t.Fatalf("Enqueue(%s): %v", name, err)
		}
	}
	// Close sends what is queued and waits for it; a rejected batch would be waiting to
	// retry and is dropped (reported through Callback.Failure).
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	succeeded, failed, _ := rec.counts()
	if failed != 0 || succeeded != len(names) {
		t.Errorf("posthog-go reports %d sent and %d dropped of %d; its errors: %v", succeeded, failed, len(names), rec.errors)
	}
	events := c.events()
	seen := map[string]int{}
	for _, e := range events {
		seen[e.Event]++
		if !uuidPattern.MatchString(e.UUID) {
			t.Errorf("%s: stored uuid %q is not a UUID", e.Event, e.UUID)
		}
		if e.DistinctID != "install-go-default" {
			t.Errorf("%s: distinct_id %q", e.Event, e.DistinctID)
		}
	}
	for i, name := range names {
		if seen[name] != 1 {
			t.Errorf("%s stored %d times, want once (stored: %+v)", name, seen[name], events)
			continue
		}
		for _, e := range events {
			if e.Event == name {
				checkProperties(t, name, e.Properties, posthog.NewProperties().Set("index", i).Set("text", "ü"))
			}
		}
	}
}

// TestPosthogGoRetriesAcrossRestart: events captured while the collector is down are
// retried by posthog-go until it is back (same address, same database), and every event,
// before and after the restart, is stored once.
func TestPosthogGoRetriesAcrossRestart(t *testing.T) {
	c := startCollector(t)
	rec := &recorder{t: t}
	// 10 attempts 200 ms apart: about 2 s for the collector to come back.
	client := newClient(t, c.url, rec, posthog.Config{
		BatchSize:  1,
		Interval:   50 * time.Millisecond,
		RetryAfter: func(int) time.Duration { return 200 * time.Millisecond },
	})
	sentUUIDs := map[string]string{}
	capture := func(name string) {
		t.Helper()
		id := newUUID()
		sentUUIDs[id] = name
		if err := client.Enqueue(posthog.Capture{Event: name, DistinctId: "install-go-restart", Uuid: id,
			Properties: posthog.NewProperties().Set("phase", name[:len(name)-2])}); err != nil {
			t.Fatalf("Enqueue(%s): %v", name, err)
		}
	}
	capture("before_1")
	capture("before_2")
	if events := c.waitForEvents(2, 5*time.Second); len(events) != 2 {
		t.Fatalf("before the restart: stored %d events, want 2", len(events))
	}

	c.stop()
	capture("during_1")
	capture("during_2")
	capture("during_3")
	// Each of the three has failed at least once against the stopped collector.
	if !waitFor(5*time.Second, func() bool { _, _, errs := rec.counts(); return errs >= 3 }) {
		t.Fatalf("posthog-go logged no failed attempts while the collector was down")
	}
	c.start(c.addr)
	// Wait for the SDK to report all five sent: Close() would drop a batch waiting to retry.
	if !waitFor(5*time.Second, func() bool { ok, _, _ := rec.counts(); return ok == 5 }) {
		ok, failed, _ := rec.counts()
		t.Errorf("posthog-go reports %d of 5 sent (%d dropped) after the restart", ok, failed)
	}
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	events := c.events()
	seen := map[string]int{}
	for _, e := range events {
		seen[e.UUID]++
	}
	for id, name := range sentUUIDs {
		if seen[id] != 1 {
			t.Errorf("%s stored %d times, want once", name, seen[id])
		}
	}
	if len(events) != len(sentUUIDs) {
		t.Errorf("stored %d events, sent %d", len(events), len(sentUUIDs))
	}
}

// TestPosthogGoRetryAfterLostResponse: the collector stores a batch but the answer never
// reaches posthog-go (a proxy drops the connection after the collector answered), so the
// SDK sends the same body again; the collector skips the uuids it already has. posthog-go
// v1.5.2 generates no uuid itself: only events with Capture.Uuid set can be deduplicated
// this way, so that is what this test sends.
func TestPosthogGoRetryAfterLostResponse(t *testing.T) {
	c := startCollector(t)
	var mu sync.Mutex
	requests, toDrop := 0, 2
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		forward, err := http.NewRequest(r.Method, c.url+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		forward.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(forward)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mu.Lock()
		requests++
		drop := resp.StatusCode == http.StatusOK && toDrop > 0
		if drop {
			toDrop--
		}
		mu.Unlock()
		if drop {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	defer proxy.Close()

	rec := &recorder{t: t}
	client := newClient(t, proxy.URL, rec, posthog.Config{
		BatchSize:  2,
		Interval:   50 * time.Millisecond,
		RetryAfter: func(int) time.Duration { return 100 * time.Millisecond },
	})
	sentUUIDs := map[string]string{}
	for _, name := range []string{"lost_1", "lost_2", "lost_3", "lost_4"} {
		id := newUUID()
		sentUUIDs[id] = name
		if err := client.Enqueue(posthog.Capture{Event: name, DistinctId: "install-go-lost", Uuid: id}); err != nil {
			t.Fatalf("Enqueue(%s): %v", name, err)
		}
	}
	if !waitFor(5*time.Second, func() bool { ok, _, _ := rec.counts(); return ok == len(sentUUIDs) }) {
		ok, failed, _ := rec.counts()
		t.Errorf("posthog-go reports %d of %d sent (%d dropped)", ok, len(sentUUIDs), failed)
	}
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	if toDrop != 0 || requests < len(sentUUIDs)/2+2 {
		t.Errorf("the proxy saw %d requests and still had %d answers to drop: no retry was exercised", requests, toDrop)
	}
	mu.Unlock()
	events := c.events()
	seen := map[string]int{}
	for _, e := range events {
		seen[e.UUID]++
	}
	for id, name := range sentUUIDs {
		if seen[id] != 1 {
			t.Errorf("%s stored %d times, want once", name, seen[id])
		}
	}
	if len(events) != len(sentUUIDs) {
		t.Errorf("stored %d events, sent %d", len(events), len(sentUUIDs))
	}
}
