//go:build cgo

package telemetry

// Usage statistics through this package: the shared report vectors, exact counts under
// 64 goroutines, recordings made in Go and by the library into one cell, the handlers and
// the loopback server over real HTTP, the opt-out, and a report delivered to the real
// collector.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// usageClient is a memory-sink client that sends no usage report and reads no process
// variable, with a fixed identity so hashes are stable.
func usageClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	return memoryClient(t, append([]Option{
		WithUsageReports(false),
		WithIdentity("0d7b2a8e-5c1f-4f4e-9a51-2f8c3b6d7e90", "11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7"),
	}, opts...)...)
}

func mustTiming(t *testing.T, u *Usage, name string, opts ...FamilyOption) *TimingFamily {
	t.Helper()
	f, err := u.Timing(name, opts...)
	if err != nil {
		t.Fatalf("Timing(%s): %v", name, err)
	}
	return f
}

func mustWith(t *testing.T, f *TimingFamily, values ...string) *Timing {
	t.Helper()
	h, err := f.With(values...)
	if err != nil {
		t.Fatalf("With(%q): %v", values, err)
	}
	return h
}

func mustSnapshot(t *testing.T, h *Timing) TimingSnapshot {
	t.Helper()
	s, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustReport(t *testing.T, u *Usage, o reportOptions) map[string]any {
	t.Helper()
	r, err := u.report(o)
	if err != nil {
		t.Fatalf("report %+v: %v", o, err)
	}
	return r
}

// at walks decoded JSON by object keys and array indexes.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q in %s", path, k, show(v))
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("%v: no element %d in %s", path, k, show(v))
			}
			v = a[k]
		}
	}
	return v
}

func num(t *testing.T, v any) float64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("not a number: %s", show(v))
	}
	f, err := n.Float64()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestUsageVectors runs tests/vectors/usage.json with the Rust runner's semantics
// (crates/telemetry-core/tests/usage_vectors.rs), twice: once as a host would record
// (handles kept per label set, so each one's first recording goes through the library
// and the rest straight into the cell; counters added by labels through the library),
// and once with every timing and counter recording made in Go, straight into the cells.
func TestUsageVectors(t *testing.T) {
	doc := loadVectors(t, "usage.json")
	cases := doc["cases"].([]any)
	if len(cases) < 2 {
		t.Fatalf("only %d usage vectors", len(cases))
	}
	for _, direct := range []bool{false, true} {
		for _, raw := range cases {
			c := raw.(map[string]any)
			t.Run(fmt.Sprintf("%s/direct=%v", c["name"], direct), func(t *testing.T) { runUsageCase(t, c, direct) })
		}
	}
}

func vectorClient(t *testing.T, cfg map[string]any) *Client {
	t.Helper()
	var opts []Option
	var product, version, id, secret string
	for k, v := range cfg {
		switch k {
		case "environment":
			env := map[string]string{}
			for ek, ev := range v.(map[string]any) {
				env[ek] = ev.(string)
			}
			opts = append(opts, WithEnvironment(env))
		case "install_id":
			id = v.(string)
		case "secret_hex":
			secret = v.(string)
		case "product":
			product = v.(string)
		case "version":
			version = v.(string)
		case "profile":
			p, _ := json.Marshal(v)
			opts = append(opts, WithProfile(Profile{json.RawMessage(p)}))
		case "sink":
			opts = append(opts, WithSink(Sink(v.(string))))
		case "usage_reports":
			opts = append(opts, WithUsageReports(v.(bool)))
		default:
			t.Fatalf("config key %q: this runner does not know it yet", k)
		}
	}
	opts = append(opts, WithProduct(product, version), WithIdentity(id, secret))
	client, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(ctxTimeout(t, 5*time.Second)) })
	return client
}

func strs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func intOf(t *testing.T, v any) int64 {
	t.Helper()
	n, err := v.(json.Number).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func runUsageCase(t *testing.T, c map[string]any, direct bool) {
	client := vectorClient(t, c["config"].(map[string]any))
	u := client.Usage()
	timings := map[string]*TimingFamily{}
	counters := map[string]*CounterFamily{}
	for _, raw := range c["declare"].([]any) {
		d := raw.(map[string]any)
		name := d["name"].(string)
		var opts []FamilyOption
		for _, l := range d["labels"].([]any) {
			pair := strs(l)
			opts = append(opts, Label(pair[0], Kind(pair[1])))
		}
		if d["type"] == "timing" {
			if bounds, ok := d["bounds_millis"].([]any); ok {
				var b []time.Duration
				for _, ms := range bounds {
					b = append(b, time.Duration(intOf(t, ms))*time.Millisecond)
				}
				opts = append(opts, Buckets(b...))
			}
			timings[name] = mustTiming(t, u, name, opts...)
		} else {
			f, err := u.Counter(name, opts...)
			if err != nil {
				t.Fatal(err)
			}
			counters[name] = f
		}
	}
	handles := map[string]*Timing{}
	for _, raw := range c["record"].([]any) {
		r := raw.(map[string]any)
		family := r["family"].(string)
		labels := strs(r["labels"])
		if n, ok := r["add"]; ok {
			if direct {
				h, err := counters[family].With(labels...)
				if err != nil {
					t.Fatal(err)
				}
				h.direct.Store(true)
				h.Add(uint64(intOf(t, n)))
			} else if err := counters[family].Add(uint64(intOf(t, n)), labels...); err != nil {
				t.Fatal(err)
			}
			continue
		}
		key := family + "\x00" + strings.Join(labels, "\x00")
		h := handles[key]
		if h == nil {
			h = mustWith(t, timings[family], labels...)
			if direct {
				h.direct.Store(true)
			}
			handles[key] = h
		}
		end := time.Unix(intOf(t, r["at"]), 0)
		if r["ok"] == true {
			h.ObserveAt(time.Duration(intOf(t, r["duration_micros"]))*time.Microsecond, end)
		} else {
			h.FailAt(end)
		}
	}
	for _, raw := range c["sections"].([]any) {
		s := raw.(map[string]any)
		kinds := map[string]Kind{}
		for k, v := range s["kinds"].(map[string]any) {
			kinds[k] = Kind(v.(string))
		}
		if err := u.SetSection(s["name"].(string), s["value"], kinds, int(intOf(t, s["level"]))); err != nil {
			t.Fatal(err)
		}
	}
	for _, raw := range c["expect"].([]any) {
		e := raw.(map[string]any)
		o := reportOptions{Level: int(intOf(t, e["details_level"])), Anonymize: e["anonymize"].(bool)}
		if h, ok := e["histograms"].(bool); ok {
			o.Histograms = &h
		}
		got := mustReport(t, u, o)
		want := map[string]any{}
		for k, v := range e["report"].(map[string]any) {
			want[k] = v
		}
		system, hasSystem := got["system"]
		delete(got, "system")
		_, wantsSystem := want["system"]
		delete(want, "system")
		if _, isObject := system.(map[string]any); hasSystem != wantsSystem || (hasSystem && !isObject) {
			t.Errorf("%+v: system %s, expected one: %v", o, show(system), wantsSystem)
		}
		if !sameJSON(any(got), any(want)) {
			t.Errorf("%+v:\n got  %s\n want %s", o, show(got), show(want))
		}
	}
}

// TestUsageSixtyFourGoroutinesRecordOneKeyExactly: 64 goroutines time the same label set,
// half through one shared handle and half through handles of their own, and count on one
// shared counter; every count, bucket and sum adds up exactly.
func TestUsageSixtyFourGoroutinesRecordOneKeyExactly(t *testing.T) {
	u := usageClient(t).Usage()
	ops := mustTiming(t, u, "ops", Label("route", KindSafe))
	shared := mustWith(t, ops, "GET /a")
	points, err := u.Counter("points")
	if err != nil {
		t.Fatal(err)
	}
	total, err := points.With()
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, per = 64, 1000
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		h := shared
		if g%2 == 1 {
			h = mustWith(t, ops, "GET /a")
		}
		wg.Add(1)
		go func(h *Timing) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				switch i % 4 {
				case 0, 1:
					h.Observe(500 * time.Microsecond) // first bucket
				case 2:
					h.Observe(7 * time.Millisecond) // third
				default:
					h.Fail()
				}
				total.Add(2)
			}
		}(h)
	}
	wg.Wait()
	r := mustReport(t, u, reportOptions{Level: 3})
	all := at(t, r, "operations", "ops")
	check := func(what string, got any, want float64) {
		t.Helper()
		if g := num(t, got); g != want {
			t.Errorf("%s = %v, want %v", what, g, want)
		}
	}
	check("count", at(t, all, "count"), goroutines*per*3/4)
	check("fail_count", at(t, all, "fail_count"), goroutines*per/4)
	check("le 1 ms", at(t, all, "duration_histogram", "cumulative_counts", 0), goroutines*per/2)
	check("le 5 ms", at(t, all, "duration_histogram", "cumulative_counts", 1), goroutines*per/2)
	check("le 10 ms", at(t, all, "duration_histogram", "cumulative_counts", 2), goroutines*per*3/4)
	check("min", at(t, all, "min_duration_micros"), 500)
	check("max", at(t, all, "max_duration_micros"), 7000)
	check("total", at(t, all, "total_duration_micros"), goroutines*per/4*(2*500+7000))
	if n := len(at(t, all, "by_labels").([]any)); n != 1 {
		t.Errorf("%d label sets, want 1", n)
	}
	check("counter", at(t, r, "counters", "points", "total"), goroutines*per*2)
	if v := total.Value(); v != goroutines*per*2 {
		t.Errorf("Value() = %d", v)
	}
}

// TestGoAndLibraryRecordingsIntoOneCellAgree records into one cell from Go (sync/atomic,
// usage_record.go) and through the library (telemetry_timing_record_at), through two
// handles of the same label set, and checks the core's reading of the cell, its report and
// its Prometheus text against the sums made here.
func TestGoAndLibraryRecordingsIntoOneCellAgree(t *testing.T) {
	u := usageClient(t).Usage()
	f := mustTiming(t, u, "jobs", Label("queue", KindSafe), Buckets(time.Millisecond, 10*time.Millisecond))
	goSide := mustWith(t, f, "q")
	goSide.direct.Store(true) // every Go recording straight into the cell
	lib := mustWith(t, f, "q")
	if goSide.words != lib.words {
		t.Fatal("two handles of one label set have different cells")
	}
	before := recordingCrossings.Load()
	goSide.ObserveAt(500*time.Microsecond, time.Unix(1767225600, 0)) // le 1 ms
	goSide.ObserveAt(10*time.Millisecond, time.Unix(1767225605, 0))  // on the bound: le 10 ms
	goSide.ObserveAt(2*time.Second, time.Unix(1767225601, 0))        // +Inf only
	goSide.FailAt(time.Unix(1767225610, 0))                          // the latest second
	goSide.ObserveAt(-time.Second, time.Unix(1767225600, 0))         // negative: 0 ns, le 1 ms
	if n := recordingCrossings.Load() - before; n != 0 {
		t.Errorf("%d calls into C for direct recordings", n)
	}
	if err := cTimingRecordAt(lib.h, 3_000_000, 1767225602); err != nil { // le 10 ms
		t.Fatal(err)
	}
	if err := cTimingRecordFailureAt(lib.h, 1767225603); err != nil {
		t.Fatal(err)
	}
	s := mustSnapshot(t, lib)
	want := TimingSnapshot{
		Count: 5, FailCount: 2,
		Total:         500*time.Microsecond + 10*time.Millisecond + 2*time.Second + 3*time.Millisecond,
		Min:           0,
		Max:           2 * time.Second,
		LastResponded: time.Unix(1767225610, 0),
		Cumulative:    []uint64{2, 4},
	}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("snapshot\n got  %+v\n want %+v", s, want)
	}
	r := mustReport(t, u, reportOptions{Level: 3})
	item := at(t, r, "operations", "jobs", "by_labels", 0)
	if got := num(t, at(t, item, "total_duration_micros")); got != 2_013_500 {
		t.Errorf("total_duration_micros %v", got)
	}
	if got := at(t, item, "last_responded"); got != "2026-01-01T00:00:10Z" {
		t.Errorf("last_responded %v", got)
	}
	text, err := u.Prometheus(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`gotest_jobs_seconds_bucket{queue="q",le="0.001"} 2`,
		`gotest_jobs_seconds_bucket{queue="q",le="0.01"} 4`,
		`gotest_jobs_seconds_bucket{queue="q",le="+Inf"} 5`,
		`gotest_jobs_seconds_sum{queue="q"} 2.0135`,
		`gotest_jobs_seconds_count{queue="q"} 5`,
		`gotest_jobs_failures_total{queue="q"} 2`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("no %q in\n%s", line, text)
		}
	}
}

// TestUsageRecordingIsFreeOfCallsAndAllocations: after a handle's first recording (through
// the library), recording crosses into C no more and allocates nothing.
func TestUsageRecordingIsFreeOfCallsAndAllocations(t *testing.T) {
	u := usageClient(t).Usage()
	h := mustWith(t, mustTiming(t, u, "q"))
	c, err := u.Counter("n")
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.With()
	if err != nil {
		t.Fatal(err)
	}
	before := recordingCrossings.Load()
	h.Observe(time.Millisecond)
	n.Inc()
	if got := recordingCrossings.Load() - before; got != 2 {
		t.Errorf("the first recordings made %d calls into C, want 1 each", got)
	}
	before = recordingCrossings.Load()
	allocs := testing.AllocsPerRun(1000, func() {
		h.Start().Stop()
		h.Observe(time.Millisecond)
		h.Fail()
		h.Start().End(io.EOF)
		n.Add(3)
	})
	if got := recordingCrossings.Load() - before; got != 0 {
		t.Errorf("%d calls into C after the first recording", got)
	}
	if allocs != 0 {
		t.Errorf("recording allocates %v times", allocs)
	}
	s := mustSnapshot(t, h)
	if s.Count != 1+2*1001 || s.FailCount != 2*1001 {
		t.Errorf("snapshot %+v", s)
	}
	if v := n.Value(); v != 1+3*1001 {
		t.Errorf("counter %d", v)
	}
}

func TestUsageSpansAndHandleForms(t *testing.T) {
	u := usageClient(t).Usage()
	h := mustWith(t, mustTiming(t, u, "op"))
	func() { defer h.Start().Stop() }()
	h.Start().End(nil)
	h.Start().End(io.EOF)
	fail := func() (err error) {
		defer h.Start().Done(&err)
		return io.ErrUnexpectedEOF
	}
	ok := func() (err error) {
		defer h.Start().Done(&err)
		return nil
	}
	_, _ = fail(), ok()
	if err := h.Time(func() error { return io.EOF }); err != io.EOF {
		t.Errorf("Time returned %v", err)
	}
	_ = h.Time(func() error { time.Sleep(2 * time.Millisecond); return nil })
	var zero Span
	zero.Stop()
	zero.End(io.EOF)
	zero.Done(nil)
	var none *Timing
	none.Observe(time.Second)
	none.Fail()
	none.Start().Stop()
	if s, err := none.Snapshot(); err != nil || s.Count != 0 {
		t.Errorf("a nil timing's snapshot: %+v, %v", s, err)
	}
	var noCounter *Counter
	noCounter.Inc()
	if noCounter.Value() != 0 {
		t.Error("a nil counter counted")
	}
	s := mustSnapshot(t, h)
	if s.Count != 4 || s.FailCount != 3 {
		t.Errorf("count %d fail %d, want 4 and 3: %+v", s.Count, s.FailCount, s)
	}
	if s.Max < 2*time.Millisecond || s.Max > time.Minute {
		t.Errorf("max %v: the timed sleep is not in it", s.Max)
	}
	if d := time.Since(s.LastResponded); d < 0 || d > time.Minute {
		t.Errorf("last responded %v ago", d)
	}
	// By labels, without a handle.
	rest := mustTiming(t, u, "rest", Label("status", KindSafe))
	if err := rest.Observe(3*time.Millisecond, "200"); err != nil {
		t.Fatal(err)
	}
	if err := rest.Fail("500"); err != nil {
		t.Fatal(err)
	}
	if s := mustSnapshot(t, mustWith(t, rest, "500")); s.FailCount != 1 || s.Count != 0 {
		t.Errorf("by labels: %+v", s)
	}
	if rest.Name() != "rest" {
		t.Errorf("name %q", rest.Name())
	}
}

func TestUsageErrors(t *testing.T) {
	client := usageClient(t)
	u := client.Usage()
	is := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
	_, err := u.Timing("Bad-Name")
	is("bad name", err, ErrInvalidArgument)
	_, err = u.Timing("t", Label("a", "secret"))
	is("unknown kind", err, ErrInvalidArgument)
	_, err = u.Timing("t", Buckets(10*time.Millisecond, time.Millisecond))
	is("decreasing bounds", err, ErrInvalidArgument)
	_, err = u.Timing("t", Buckets())
	is("no bounds", err, ErrInvalidArgument)
	_, err = u.Timing("t", Buckets(-time.Millisecond))
	is("negative bound", err, ErrInvalidArgument)
	_, err = u.Timing("t", Help("a\x00b"))
	is("NUL in help", err, ErrInvalidArgument)
	_, err = u.Timing("t", MaxLabelSets(-1))
	is("negative max", err, ErrInvalidArgument)
	_, err = u.Counter("c", Buckets(time.Millisecond))
	is("bounds on a counter", err, ErrInvalidArgument)
	f := mustTiming(t, u, "t", Label("a", KindSafe))
	_, err = u.Timing("t", Label("b", KindSafe))
	is("redeclared with other labels", err, ErrInvalidArgument)
	_, err = u.Counter("t")
	is("a counter named like a timing", err, ErrInvalidArgument)
	_, err = f.With()
	is("no values for one label", err, ErrInvalidArgument)
	_, err = f.With("x", "y")
	is("two values for one label", err, ErrInvalidArgument)
	_, err = f.With("\xff")
	is("invalid UTF-8 value", err, ErrInvalidUTF8)
	_, err = f.With("a\x00")
	is("NUL in a value", err, ErrInvalidArgument)
	is("Observe: wrong count", f.Observe(time.Second), ErrInvalidArgument)
	is("Fail: wrong count", f.Fail("x", "y"), ErrInvalidArgument)
	is("reserved section", u.SetSection("operations", 1, nil, 2), ErrInvalidArgument)
	is("bad section name", u.SetSection("Bad", 1, nil, 2), ErrInvalidArgument)
	is("nil section value", u.SetSection("s", nil, nil, 2), ErrInvalidArgument)
	is("negative level", u.SetSection("s", 1, nil, -1), ErrInvalidArgument)
	is("unknown kind in a section", u.SetSection("s", 1, map[string]Kind{"a": "secret"}, 2), ErrInvalidArgument)
	is("unencodable section", u.SetSection("s", make(chan int), nil, 2), ErrInvalidArgument)
	is("unencodable app fields", u.SetAppFields(map[string]any{"f": func() {}}, nil), ErrInvalidArgument)
	_, err = u.Report(-1, false)
	is("negative report level", err, ErrInvalidArgument)
	_, err = u.Serve("0.0.0.0:0")
	is("serving beyond loopback", err, ErrInvalidArgument)

	// Sections, app fields and the data directory reach the report.
	if err := u.SetSection("collections", map[string]any{"number": 2, "names": []string{"my_collection"}},
		map[string]Kind{"number": KindExact}, 2); err != nil {
		t.Fatal(err)
	}
	if err := u.SetSection("cluster", map[string]any{"peers": 3}, nil, 9); err != nil {
		t.Fatal(err)
	}
	if err := u.SetAppFields(map[string]any{"mode": "distributed"}, map[string]Kind{"mode": KindSafe}); err != nil {
		t.Fatal(err)
	}
	if err := u.SetDataDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	r, err := u.Report(2, true)
	if err != nil {
		t.Fatal(err)
	}
	if num(t, at(t, r, "collections", "number")) != 2 || at(t, r, "collections", "names", 0) != "80ded56ea35a1d2c" {
		t.Errorf("collections %s", show(r["collections"]))
	}
	if _, ok := r["cluster"]; ok {
		t.Error("a level-4 section at level 2")
	}
	if at(t, r, "app", "mode") != "distributed" || at(t, r, "app", "name") != "gotest" {
		t.Errorf("app %s", show(r["app"]))
	}
	if removed, err := u.RemoveSection("cluster"); err != nil || !removed {
		t.Errorf("RemoveSection: %v %v", removed, err)
	}
	if removed, err := u.RemoveSection("cluster"); err != nil || removed {
		t.Errorf("RemoveSection again: %v %v", removed, err)
	}

	// After Close: declaring, rendering and serving are refused; handles still record.
	h := mustWith(t, f, "x")
	if err := client.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	h.Observe(time.Millisecond)
	if s := mustSnapshot(t, h); s.Count != 1 {
		t.Errorf("a handle after Close: %+v", s)
	}
	_, err = u.Timing("late")
	is("Timing after Close", err, ErrShutDown)
	_, err = u.Counter("late")
	is("Counter after Close", err, ErrShutDown)
	_, err = u.Report(0, false)
	is("Report after Close", err, ErrShutDown)
	_, err = u.Prometheus(false)
	is("Prometheus after Close", err, ErrShutDown)
	is("SetSection after Close", u.SetSection("s", 1, nil, 2), ErrShutDown)
	is("SetAppFields after Close", u.SetAppFields(nil, nil), ErrShutDown)
	is("SetDataDir after Close", u.SetDataDir("/"), ErrShutDown)
	_, err = u.RemoveSection("s")
	is("RemoveSection after Close", err, ErrShutDown)
	_, err = u.Serve("127.0.0.1:0")
	is("Serve after Close", err, ErrShutDown)
}

// plainHTTP opens a connection per request, so a request after a server stopped never
// goes to a connection that server left open, and gives up after a few seconds.
var plainHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := plainHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

const prometheusType = "text/plain; version=0.0.4; charset=utf-8"

func TestUsageHandlersOverLoopbackHTTP(t *testing.T) {
	client := usageClient(t)
	u := client.Usage()
	h := mustWith(t, mustTiming(t, u, "search", Label("collection", KindHashed)), "my_collection")
	h.Observe(4 * time.Millisecond)
	mux := http.NewServeMux()
	mux.Handle("/telemetry", u.Handler())
	mux.Handle("/metrics", u.Handler())
	mux.Handle("/other", u.Handler())
	mux.Handle("/status", u.TelemetryHandler())
	mux.Handle("/internal/prom", u.MetricsHandler())
	srv := httptest.NewServer(mux) // 127.0.0.1
	defer srv.Close()

	for _, tc := range []struct {
		method, target string
		status         int
		contentType    string
		contains       string
		absent         string
	}{
		{"GET", "/telemetry", 200, "application/json", `"search":{"avg_duration_micros":4000.0,"count":1`, ""},
		{"GET", "/telemetry?details_level=2&anonymize=true", 200, "application/json", `"by_labels"`, "my_collection"},
		{"GET", "/telemetry?details_level=2", 200, "application/json", `"collection":"my_collection"`, ""},
		{"GET", "/metrics", 200, prometheusType, `gotest_search_seconds_count{collection="my_collection"} 1` + "\n", ""},
		{"GET", "/metrics?anonymize=true", 200, prometheusType, "gotest_search_seconds_count{collection=", "my_collection"},
		{"HEAD", "/metrics", 200, prometheusType, "", "gotest"},
		{"GET", "/status?details_level=1", 200, "application/json", `"max_duration_micros":4000.0`, ""},
		{"GET", "/internal/prom", 200, prometheusType, "# TYPE gotest_search_seconds histogram", ""},
		{"GET", "/telemetry?details_level=high", 400, "application/json", "details_level", ""},
		{"GET", "/telemetry?details_level=-1", 400, "application/json", "details_level", ""},
		{"GET", "/telemetry?anonymize=maybe", 400, "application/json", "anonymize", ""},
		{"GET", "/telemetry?colour=red", 400, "application/json", "colour", ""},
		{"GET", "/metrics?anonymize=1&anonymize=0", 400, "application/json", "twice", ""},
		{"GET", "/internal/prom?details_level=1", 400, "application/json", "details_level", ""},
		{"GET", "/other", 404, "application/json", "not found", ""},
		{"POST", "/metrics", 405, "application/json", "only GET", ""},
	} {
		status, header, body := get(t, tc.method, srv.URL+tc.target)
		if status != tc.status || header.Get("Content-Type") != tc.contentType {
			t.Errorf("%s %s: %d %q, want %d %q\n%s", tc.method, tc.target, status, header.Get("Content-Type"), tc.status, tc.contentType, body)
		}
		if !strings.Contains(body, tc.contains) || (tc.absent != "" && strings.Contains(body, tc.absent)) {
			t.Errorf("%s %s: body has not %q (or has %q):\n%s", tc.method, tc.target, tc.contains, tc.absent, body)
		}
		if tc.status == 405 && header.Get("Allow") != "GET, HEAD" {
			t.Errorf("405 without Allow: %v", header)
		}
	}
	if err := client.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if status, _, body := get(t, "GET", srv.URL+"/metrics"); status != http.StatusServiceUnavailable || !strings.Contains(body, "after Close") {
		t.Errorf("after Close: %d %s", status, body)
	}
}

func TestUsageServeOnLoopback(t *testing.T) {
	client := usageClient(t)
	u := client.Usage()
	mustWith(t, mustTiming(t, u, "query")).Observe(time.Millisecond)
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:9464", "example.com:80", "127.0.0.1", ""} {
		if _, err := u.Serve(addr); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Serve(%q): %v", addr, err)
		}
	}
	first, err := u.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %s", first.URL())
	}
	status, header, body := get(t, "GET", first.URL()+"/metrics")
	if status != 200 || header.Get("Content-Type") != prometheusType || !strings.Contains(body, "gotest_query_seconds_count 1\n") {
		t.Errorf("GET /metrics: %d %v\n%s", status, header, body)
	}
	if status, _, body := get(t, "GET", first.URL()+"/telemetry?details_level=x"); status != 400 {
		t.Errorf("bad query: %d %s", status, body)
	}
	// The port is taken now: a second server on it is refused.
	if _, err := u.Serve(strings.TrimPrefix(first.URL(), "http://")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Serve on a port in use: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := plainHTTP.Get(first.URL() + "/metrics"); err == nil {
		t.Error("answered after Close")
	}
	// A server still running at the client's Close is stopped by it.
	second, err := u.Serve("localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, "GET", second.URL()+"/telemetry"); status != 200 {
		t.Errorf("second server: %d", status)
	}
	if err := client.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := plainHTTP.Get(second.URL() + "/telemetry"); err == nil {
		t.Error("the server still answers after the client's Close")
	}
	_ = second.Close()
}

// TestUsageOptedOutRecordsLocallyAndSendsNothing: with DO_NOT_TRACK=1 in the client's
// environment, recording, the report and the handlers work, and nothing reaches the
// endpoint (a loopback server counting requests) or the disk, even past the report delay.
func TestUsageOptedOutRecordsLocallyAndSendsNothing(t *testing.T) {
	var requests atomic.Int64
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer endpoint.Close()
	home := t.TempDir()
	client, err := New(
		WithProduct("optout", "1.0"),
		WithEndpoint(endpoint.URL),
		WithAPIKey("phc_optout"),
		WithEnvironment(map[string]string{"DO_NOT_TRACK": "1", "HOME": home}),
		WithUsageReportDelay(20*time.Millisecond),
		WithUsageReportInterval(50*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	if client.Enabled() {
		t.Fatalf("DO_NOT_TRACK=1 left it on: %s", client.Decision())
	}
	u := client.Usage()
	h := mustWith(t, mustTiming(t, u, "query"))
	c, err := u.Counter("points")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		h.Start().Stop()
		if err := c.Add(2); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.SetSection("collections", map[string]any{"number": 1}, nil, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several report intervals
	r, err := u.Report(2, false)
	if err != nil {
		t.Fatal(err)
	}
	if num(t, at(t, r, "operations", "query", "count")) != 100 || num(t, at(t, r, "counters", "points", "total")) != 200 {
		t.Errorf("report %s", show(r))
	}
	srv := httptest.NewServer(u.Handler())
	defer srv.Close()
	if status, _, body := get(t, "GET", srv.URL+"/metrics"); status != 200 || !strings.Contains(body, "optout_query_seconds_count 100\n") {
		t.Errorf("/metrics while opted out: %d\n%s", status, body)
	}
	if err := client.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests while opted out", n)
	}
	if files := listing(t, home); len(files) != 1 {
		t.Errorf("files written while opted out: %v", files)
	}
	if s := client.Stats(); s != (Stats{}) {
		t.Errorf("stats while opted out: %+v", s)
	}
}

type usageReportRow struct {
	DistinctID string         `json:"distinct_id"`
	Report     map[string]any `json:"report"`
}

// TestUsageReportReachesTheCollector: an enabled client with a short report delay sends
// its usage report, anonymized, to the real collector without being flushed or closed,
// and GET /api/usage serves it.
func TestUsageReportReachesTheCollector(t *testing.T) {
	url := startCollector(t)
	client, err := New(
		WithProduct("usagelike-go", "0.3.0"),
		WithProfile(ProductProfile("usagelike")),
		WithEndpoint(url),
		WithAPIKey("phc_usage"),
		WithEnvironment(map[string]string{"HOME": t.TempDir()}),
		WithUsageReportDelay(300*time.Millisecond),
		WithUsageReportInterval(time.Hour),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctxTimeout(t, 5*time.Second))
	if !client.Enabled() {
		t.Fatalf("off: %s", client.Decision())
	}
	u := client.Usage()
	rest := mustTiming(t, u, "rest", Label("route", KindSafe), Label("collection", KindHashed))
	h := mustWith(t, rest, "GET /points", "my_collection")
	for i := 0; i < 10; i++ {
		h.Observe(time.Duration(i+1) * time.Millisecond)
	}
	h.Fail()
	if err := u.SetSection("collections", map[string]any{"number": 1}, map[string]Kind{"number": KindExact}, 2); err != nil {
		t.Fatal(err)
	}
	var rows []usageReportRow
	deadline := time.Now().Add(15 * time.Second)
	for len(rows) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		getJSON(t, url+"/api/usage?product=usagelike-go", &rows)
	}
	if len(rows) != 1 {
		t.Fatalf("%d usage reports at the collector", len(rows))
	}
	r := rows[0].Report
	if r["id"] != rows[0].DistinctID {
		t.Errorf("report id %v, distinct_id %s", r["id"], rows[0].DistinctID)
	}
	item := at(t, r, "operations", "rest", "by_labels", 0)
	if at(t, item, "count") != 10.0 || at(t, item, "fail_count") != 1.0 {
		t.Errorf("counts %s", show(item))
	}
	if at(t, item, "labels", "route") != "GET /points" {
		t.Errorf("route %v", at(t, item, "labels", "route"))
	}
	if c, _ := at(t, item, "labels", "collection").(string); len(c) != 16 || c == "my_collection" {
		t.Errorf("collection not hashed: %q", c)
	}
	if counts, ok := at(t, item, "duration_histogram", "cumulative_counts").([]any); !ok || len(counts) != 11 {
		t.Errorf("histogram %s", show(at(t, item, "duration_histogram")))
	}
	if at(t, r, "collections", "number") != 1.0 || at(t, r, "app", "name") != "usagelike-go" {
		t.Errorf("report %s", show(r))
	}
	if _, ok := r["system"].(map[string]any); !ok {
		t.Errorf("no system section: %s", show(r))
	}
}
