package telemetry

// Usage statistics in Qdrant's model: operation timings and counters that the host
// records, sections it supplies, rendered by the core as one report at a details level,
// as Prometheus text, and served at /telemetry and /metrics. The core decides everything
// (names, label counts, bounds, the overflow key, levels, anonymization, query parsing,
// loopback only); this file converts values and maps errors. Recording is in
// usage_record.go.

import (
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Usage is a client's usage statistics: declare timing and counter families, record
// through their handles, push sections, and read the report, the Prometheus text or the
// local endpoints. Get it with Client.Usage.
//
// Recording works whatever the consent decision: the numbers are the operator's own and
// the local endpoints always answer. Only sending the report home follows consent: an
// enabled client sends it, anonymized, after WithUsageReportDelay (10 s by default) and
// then every WithUsageReportInterval (1 h), starting with the first recording; an opted-out
// client sends nothing and starts nothing.
//
// No library thread ever calls into Go: sections are values the host pushes with
// SetSection from its own goroutines, whenever they change.
//
// After Client.Close, declaring, rendering and serving return ErrShutDown (the handlers
// answer 503); handles still record, into numbers nobody reads any more.
type Usage struct {
	in *client
}

// Usage returns the client's usage statistics. A *Usage (and every family and handle
// made from it) keeps its Client reachable, so the client is not closed by its finalizer
// while they are in use.
func (c *Client) Usage() *Usage { return &c.usage }

// usageState is the part of a client's state that usage statistics add: the loopback
// servers started with Serve, stopped by Close.
type usageState struct {
	mu      sync.Mutex
	servers map[*UsageServer]struct{}
}

// withHandle runs call with the client's library handle, or returns ErrShutDown after
// Close.
func (u *Usage) withHandle(what string, call func(h handle) error) error {
	u.in.hmu.RLock()
	defer u.in.hmu.RUnlock()
	if u.in.h == nil {
		return errClosed(what)
	}
	return call(u.in.h)
}

// A FamilyOption configures a timing or counter family.
type FamilyOption func(*declaration)

// declaration is a family's declaration as the C ABI takes it.
type declaration struct {
	Name    string      `json:"name"`
	Help    string      `json:"help,omitempty"`
	Labels  [][2]string `json:"labels,omitempty"`
	Bounds  *[]float64  `json:"bounds_millis,omitempty"`
	MaxKeys *int        `json:"max_keys,omitempty"`
}

// Help is the family's # HELP text in the Prometheus exposition.
func Help(text string) FamilyOption { return func(d *declaration) { d.Help = text } }

// Label adds a label, in order; kind says how its values are anonymized in the report
// sent home and in anonymized renderings (KindSafe: as is, for route templates, statuses
// and other values of the code's own; KindHashed: a keyed hash, for names users chose).
// At most 8 labels.
func Label(name string, kind Kind) FamilyOption {
	return func(d *declaration) { d.Labels = append(d.Labels, [2]string{name, string(kind)}) }
}

// Buckets sets a timing family's histogram bounds: 1 to 15 increasing positive durations
// (default Qdrant's: 1, 5, 10, 20, 50, 100 and 500 ms; 1, 5, 10 and 50 s). A counter family
// refuses it.
func Buckets(bounds ...time.Duration) FamilyOption {
	return func(d *declaration) {
		ms := make([]float64, len(bounds))
		for i, b := range bounds {
			ms[i] = float64(b) / float64(time.Millisecond)
		}
		d.Bounds = &ms
	}
}

// MaxLabelSets bounds how many label sets the family keeps (default 1024): later new
// ones all record into one overflow set whose values are "__other__", so labelling by an
// unbounded value costs bounded memory and shows.
func MaxLabelSets(n int) FamilyOption { return func(d *declaration) { d.MaxKeys = &n } }

func declare(name string, opts []FamilyOption) ([]byte, error) {
	d := declaration{Name: name}
	for _, o := range opts {
		o(&d)
	}
	text, err := json.Marshal(&d)
	if err != nil {
		return nil, newError(CodeInvalidArgument, "declaration of %s: %v", name, err)
	}
	return text, nil
}

// labelsJSON is a label set as the C ABI takes it: a JSON array of strings.
func labelsJSON(values []string) ([]byte, error) {
	if len(values) == 0 {
		return []byte("[]"), nil
	}
	for _, v := range values {
		if !utf8.ValidString(v) {
			return nil, newError(CodeInvalidUTF8, "label value %q is not valid UTF-8", v)
		}
	}
	b, err := json.Marshal(values)
	if err != nil {
		return nil, newError(CodeInvalidArgument, "labels: %v", err)
	}
	return b, nil
}

// TimingFamily is a declared operation timing: one cell of counts, sums, extremes and a
// histogram per label set. Safe for concurrent use.
type TimingFamily struct {
	u    *Usage
	h    timingFamilyHandle
	name string
}

// Timing declares (or finds) the timing family name: 1 to 100 of a-z, 0-9 and _, not
// starting with a digit. Declaring the same name again with the same labels and bounds
// returns the same family.
//
//	rest, err := client.Usage().Timing("rest_responses",
//		telemetry.Help("REST requests by route and status"),
//		telemetry.Label("route", telemetry.KindSafe),
//		telemetry.Label("status", telemetry.KindSafe))
//
// Errors: ErrInvalidArgument (a bad name, label or bound; a counter, or a timing with
// other labels or bounds, of that name), ErrShutDown (after Close).
func (u *Usage) Timing(name string, opts ...FamilyOption) (*TimingFamily, error) {
	defer runtime.KeepAlive(u)
	text, err := declare(name, opts)
	if err != nil {
		return nil, err
	}
	var fh timingFamilyHandle
	if err := u.withHandle("declaring a timing", func(h handle) error {
		fh, err = cTimingFamilyNew(h, text)
		return err
	}); err != nil {
		return nil, err
	}
	f := &TimingFamily{u: u, h: fh, name: name}
	runtime.SetFinalizer(f, func(f *TimingFamily) { cTimingFamilyFree(f.h) })
	return f, nil
}

// Name is the family's name.
func (f *TimingFamily) Name() string { return f.name }

// With returns the timing of one label set, its values in the declared label order (none
// for a family without labels). Take it once and keep it: recording through it crosses
// into C only once. The same values always give the same numbers; past MaxLabelSets new
// values share the overflow set.
//
// Errors: ErrInvalidArgument (the wrong number of values), ErrInvalidUTF8.
func (f *TimingFamily) With(values ...string) (*Timing, error) {
	defer runtime.KeepAlive(f)
	labels, err := labelsJSON(values)
	if err != nil {
		return nil, err
	}
	th, err := cTimingFamilyWith(f.h, labels)
	if err != nil {
		return nil, err
	}
	words, bounds, err := cTimingCell(th)
	if err != nil {
		cTimingFree(th)
		return nil, err
	}
	t := &Timing{f: f, h: th, words: words, bounds: bounds}
	runtime.SetFinalizer(t, func(t *Timing) { cTimingFree(t.h) })
	return t, nil
}

// Observe records one operation of a label set that worked and took d, without a
// handle: for operations whose labels (a status) are known only at their end. It
// crosses into C each time; With and a kept handle are cheaper.
func (f *TimingFamily) Observe(d time.Duration, values ...string) error {
	defer runtime.KeepAlive(f)
	labels, err := labelsJSON(values)
	if err != nil {
		return err
	}
	return cTimingFamilyRecord(f.h, labels, nanosOf(d))
}

// Fail counts one failed operation of a label set (counted, not timed), without a
// handle.
func (f *TimingFamily) Fail(values ...string) error {
	defer runtime.KeepAlive(f)
	labels, err := labelsJSON(values)
	if err != nil {
		return err
	}
	return cTimingFamilyRecordFailure(f.h, labels)
}

// Timing records the operations of one label set. Recording never blocks, takes no lock
// and does not allocate: a few atomic additions on the cell the core reads (after the
// handle's first recording, which goes through the library). Safe for concurrent use; a
// nil *Timing records nothing.
type Timing struct {
	f      *TimingFamily // keeps the family, and so the client, reachable
	h      timingHandle
	words  *timingWords // in the library's memory, valid while h is
	bounds []uint64     // the family's, in nanoseconds
	direct atomic.Bool  // the first recording went through the library
}

// Span is one operation being timed, from Timing.Start. It is a value: copy it, pass it,
// defer its methods. Each of Stop, End and Done records the operation; call one of them
// once. The zero Span records nothing.
type Span struct {
	t     *Timing
	start time.Duration // monotonic, since clockBase
}

// Start starts timing one operation:
//
//	defer search.Start().Stop() // a success, however long it took
//
//	span := upsert.Start()
//	err := store.Upsert(points)
//	span.End(err) // a failure when err != nil
func (t *Timing) Start() Span {
	if t == nil {
		return Span{}
	}
	return Span{t: t, start: monotonic()}
}

// Stop records the operation as a success that took the time since Start.
func (s Span) Stop() {
	if s.t == nil {
		return
	}
	now := monotonic()
	s.t.recordOK(nanosOf(now-s.start), unixSecondAt(now))
}

// End records the operation: a failure when err is not nil (counted, not timed, as
// Qdrant does), otherwise a success that took the time since Start.
func (s Span) End(err error) {
	if s.t == nil {
		return
	}
	if err != nil {
		s.t.recordFail(unixSecondAt(monotonic()))
		return
	}
	s.Stop()
}

// Done is End for a deferred call, reading the error when the function returns:
//
//	func (s *Service) Search(q Query) (res Result, err error) {
//		defer s.searches.Start().Done(&err)
//		...
//	}
func (s Span) Done(errp *error) {
	var err error
	if errp != nil {
		err = *errp
	}
	s.End(err)
}

// Observe records one operation that worked and took d (a negative d counts as 0),
// ending now.
func (t *Timing) Observe(d time.Duration) {
	if t == nil {
		return
	}
	t.recordOK(nanosOf(d), unixSecondAt(monotonic()))
}

// ObserveAt records one operation that worked, took d and ended at end: for hosts that
// carry their own clock, and test vectors.
func (t *Timing) ObserveAt(d time.Duration, end time.Time) {
	if t == nil {
		return
	}
	t.recordOK(nanosOf(d), unixSecondOf(end))
}

// Fail counts one failed operation, ending now (counted, not timed).
func (t *Timing) Fail() {
	if t == nil {
		return
	}
	t.recordFail(unixSecondAt(monotonic()))
}

// FailAt counts one failed operation that ended at end.
func (t *Timing) FailAt(end time.Time) {
	if t == nil {
		return
	}
	t.recordFail(unixSecondOf(end))
}

// Time runs op, recording a success when it returns nil and a failure otherwise, and
// returns its error.
func (t *Timing) Time(op func() error) error {
	s := t.Start()
	err := op()
	s.End(err)
	return err
}

// TimingSnapshot is a timing's numbers at one moment, as the core reads them.
type TimingSnapshot struct {
	// Count is the operations that worked (each timed).
	Count uint64
	// FailCount is the operations that failed (counted, not timed).
	FailCount uint64
	// Total, Min and Max are the sum, the shortest and the longest of the timed durations
	// (Min is 0 before the first).
	Total, Min, Max time.Duration
	// LastResponded is when the last operation ended, to the second; zero before any.
	LastResponded time.Time
	// Cumulative counts, per bucket bound, the operations that took at most that long;
	// Count is the +Inf bucket.
	Cumulative []uint64
}

// Snapshot reads the timing's numbers through the library; it never stalls a recorder.
// A nil *Timing has recorded nothing.
func (t *Timing) Snapshot() (TimingSnapshot, error) {
	if t == nil {
		return TimingSnapshot{}, nil
	}
	defer runtime.KeepAlive(t)
	text, err := cTimingSnapshot(t.h)
	if err != nil {
		return TimingSnapshot{}, err
	}
	var raw struct {
		Count      uint64   `json:"count"`
		FailCount  uint64   `json:"fail_count"`
		TotalNanos uint64   `json:"total_nanos"`
		MinNanos   uint64   `json:"min_nanos"`
		MaxNanos   uint64   `json:"max_nanos"`
		LastSecond int64    `json:"last_second"`
		Cumulative []uint64 `json:"cumulative"`
	}
	if err := json.Unmarshal(text, &raw); err != nil {
		return TimingSnapshot{}, newError(CodeInvalidJSON, "snapshot from the library: %v", err)
	}
	s := TimingSnapshot{
		Count:      raw.Count,
		FailCount:  raw.FailCount,
		Total:      time.Duration(raw.TotalNanos),
		Min:        time.Duration(raw.MinNanos),
		Max:        time.Duration(raw.MaxNanos),
		Cumulative: raw.Cumulative,
	}
	if raw.LastSecond > 0 {
		s.LastResponded = time.Unix(raw.LastSecond, 0)
	}
	return s, nil
}

// CounterFamily is a declared counter: a monotonic total per label set.
type CounterFamily struct {
	u    *Usage
	h    counterFamilyHandle
	name string
}

// Counter declares (or finds) the counter family name, with the same options and rules
// as Timing except Buckets.
func (u *Usage) Counter(name string, opts ...FamilyOption) (*CounterFamily, error) {
	defer runtime.KeepAlive(u)
	text, err := declare(name, opts)
	if err != nil {
		return nil, err
	}
	var fh counterFamilyHandle
	if err := u.withHandle("declaring a counter", func(h handle) error {
		fh, err = cCounterFamilyNew(h, text)
		return err
	}); err != nil {
		return nil, err
	}
	f := &CounterFamily{u: u, h: fh, name: name}
	runtime.SetFinalizer(f, func(f *CounterFamily) { cCounterFamilyFree(f.h) })
	return f, nil
}

// Name is the family's name.
func (f *CounterFamily) Name() string { return f.name }

// With returns the counter of one label set; see TimingFamily.With.
func (f *CounterFamily) With(values ...string) (*Counter, error) {
	defer runtime.KeepAlive(f)
	labels, err := labelsJSON(values)
	if err != nil {
		return nil, err
	}
	ch, err := cCounterFamilyWith(f.h, labels)
	if err != nil {
		return nil, err
	}
	word, err := cCounterCell(ch)
	if err != nil {
		cCounterFree(ch)
		return nil, err
	}
	c := &Counter{f: f, h: ch, word: word}
	runtime.SetFinalizer(c, func(c *Counter) { cCounterFree(c.h) })
	return c, nil
}

// Add adds n to one label set's counter without a handle (crossing into C each time).
func (f *CounterFamily) Add(n uint64, values ...string) error {
	defer runtime.KeepAlive(f)
	labels, err := labelsJSON(values)
	if err != nil {
		return err
	}
	return cCounterFamilyAdd(f.h, labels, n)
}

// Counter adds to one label set's total: one atomic addition, after the first, which goes
// through the library. Safe for concurrent use; a nil *Counter counts nothing.
type Counter struct {
	f      *CounterFamily
	h      counterHandle
	word   *uint64 // in the library's memory, valid while h is
	direct atomic.Bool
}

// Add adds n (wrapping at 2^64).
func (c *Counter) Add(n uint64) {
	if c != nil {
		c.add(n)
	}
}

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Value is the total now.
func (c *Counter) Value() uint64 {
	if c == nil {
		return 0
	}
	defer runtime.KeepAlive(c)
	return atomic.LoadUint64(c.word)
}

// section is a section or the app fields as the C ABI takes them.
type section struct {
	Value any             `json:"value"`
	Kinds map[string]Kind `json:"kinds,omitempty"`
	Level *int            `json:"level,omitempty"`
}

func encodeSection(what string, s section) ([]byte, error) {
	text, err := json.Marshal(&s)
	if err != nil {
		return nil, newError(CodeInvalidArgument, "%s: %v", what, err)
	}
	return text, nil
}

// SetSection sets (or replaces) the report's section name — Qdrant's collections,
// cluster, ... — to value as it is now, encoded with encoding/json. A field named in kinds,
// at any depth, is anonymized by that kind (KindSafe for an enum-like value, KindExact for
// a count); other fields by their type (strings hashed, numbers rounded). level is the
// lowest details level that shows it (2 is Qdrant's per-item configuration level; above
// 4 means 4). Push it again from your own goroutine when the value changes: the library
// never calls Go to compute it.
//
// Errors: ErrInvalidArgument (a nil value or one encoding/json refuses, a negative level,
// an unknown kind, a bad name or one of the core's: id, app, system, counters,
// operations), ErrShutDown.
func (u *Usage) SetSection(name string, value any, kinds map[string]Kind, level int) error {
	defer runtime.KeepAlive(u)
	text, err := encodeSection("section "+name, section{Value: value, Kinds: kinds, Level: &level})
	if err != nil {
		return err
	}
	return u.withHandle("setting a section", func(h handle) error { return cSetSection(h, name, text) })
}

// RemoveSection removes the section name; it reports whether it was there.
func (u *Usage) RemoveSection(name string) (bool, error) {
	defer runtime.KeepAlive(u)
	var removed bool
	err := u.withHandle("removing a section", func(h handle) (err error) {
		removed, err = cRemoveSection(h, name)
		return err
	})
	return removed, err
}

// SetAppFields sets the fields added to the report's app object (features, startup time,
// ...), anonymized by kinds as a section is; name, version and core_version stay the
// core's. It replaces earlier fields.
func (u *Usage) SetAppFields(fields map[string]any, kinds map[string]Kind) error {
	defer runtime.KeepAlive(u)
	if fields == nil {
		fields = map[string]any{}
	}
	text, err := encodeSection("app fields", section{Value: fields, Kinds: kinds})
	if err != nil {
		return err
	}
	return u.withHandle("setting app fields", func(h handle) error { return cSetAppFields(h, text) })
}

// SetDataDir names the directory the host keeps its data in: the report (from level 1)
// gives the size and type of the disk holding it, never the path.
func (u *Usage) SetDataDir(dir string) error {
	defer runtime.KeepAlive(u)
	return u.withHandle("setting the data directory", func(h handle) error { return cSetDataDir(h, dir) })
}

// reportOptions are telemetry_usage_report's options.
type reportOptions struct {
	Level      int   `json:"details_level"`
	Anonymize  bool  `json:"anonymize"`
	Histograms *bool `json:"histograms"`
}

// Report renders the usage report at a details level, plain or anonymized (what is sent
// home). Level 0 has the install id, the app, counters' totals and timings' counts,
// failures and averages; 1 adds system information and each timing's extremes, total and
// last response; 2 the numbers per label set and the sections; 3 histograms; 4 the
// sections declared at level 4. Numbers are json.Number, so integers and floats stay
// distinct.
//
// Errors: ErrInvalidArgument (a negative level), ErrShutDown.
func (u *Usage) Report(level int, anonymize bool) (map[string]any, error) {
	return u.report(reportOptions{Level: level, Anonymize: anonymize})
}

func (u *Usage) report(o reportOptions) (map[string]any, error) {
	defer runtime.KeepAlive(u)
	options, err := json.Marshal(&o)
	if err != nil {
		return nil, newError(CodeInvalidArgument, "report options: %v", err)
	}
	var text []byte
	if err := u.withHandle("rendering the report", func(h handle) (err error) {
		text, err = cUsageReport(h, options)
		return err
	}); err != nil {
		return nil, err
	}
	var doc map[string]any
	return doc, decodeExact(text, &doc)
}

// Prometheus renders every declared family in the Prometheus text format (0.0.4):
// counters as <product>_<name>_total, timings as histograms in seconds,
// <product>_<name>_seconds, with <product>_<name>_failures_total beside. Anonymized, label
// values go through their kinds and sums are rounded.
func (u *Usage) Prometheus(anonymize bool) (string, error) {
	defer runtime.KeepAlive(u)
	var text []byte
	err := u.withHandle("rendering metrics", func(h handle) (err error) {
		text, err = cUsagePrometheus(h, anonymize)
		return err
	})
	return string(text), err
}

func (u *Usage) handle(path, query string) (status int, contentType string, body []byte, err error) {
	defer runtime.KeepAlive(u)
	err = u.withHandle("serving usage statistics", func(h handle) (err error) {
		status, contentType, body, err = cUsageHandle(h, path, query)
		return err
	})
	return status, contentType, body, err
}

// Handler serves /telemetry (the report: ?details_level=0..4&anonymize=true|false) and
// /metrics (the Prometheus text: ?anonymize=...) by the request's path; any other path is
// a 404, a bad query a 400 whose JSON body names the parameter, a method other than GET
// or HEAD a 405, and a request after Close a 503. The core parses the query and renders
// the answer. Mount it on your own server:
//
//	mux.Handle("/metrics", client.Usage().Handler())
//	mux.Handle("/telemetry", client.Usage().Handler())
func (u *Usage) Handler() http.Handler { return usageHandler{u: u} }

// TelemetryHandler serves the report (/telemetry's answer) at whatever path it is
// mounted.
func (u *Usage) TelemetryHandler() http.Handler { return usageHandler{u: u, path: "/telemetry"} }

// MetricsHandler serves the Prometheus text (/metrics's answer) at whatever path it is
// mounted.
func (u *Usage) MetricsHandler() http.Handler { return usageHandler{u: u, path: "/metrics"} }

type usageHandler struct {
	u    *Usage
	path string // "" : the request's
}

func writeJSONError(w http.ResponseWriter, status int, message string) {
	body, _ := json.Marshal(map[string]string{"error": message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (h usageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "only GET is served")
		return
	}
	path := h.path
	if path == "" {
		path = r.URL.Path
	}
	status, contentType, body, err := h.u.handle(path, r.URL.RawQuery)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrShutDown) {
			code = http.StatusServiceUnavailable
		}
		writeJSONError(w, code, err.Error())
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// UsageServer is a loopback server answering GET /telemetry and /metrics, started by
// Serve. It runs on a thread of the library until Close, or the client's Close.
type UsageServer struct {
	in  *client
	url string

	mu sync.Mutex
	h  serverHandle // nil once closed
}

// Serve serves /telemetry and /metrics on addr, a loopback address with a port
// ("127.0.0.1:9464", "[::1]:9464", "localhost:9464"; port 0 picks a free one), whatever
// the consent decision: it sends nothing anywhere. To serve them beyond loopback, mount
// Handler on your own server: that is your decision, not the library's.
//
// Errors: ErrInvalidArgument (not a loopback address, or the port cannot be listened on),
// ErrShutDown.
func (u *Usage) Serve(addr string) (*UsageServer, error) {
	defer runtime.KeepAlive(u)
	var s *UsageServer
	err := u.withHandle("serving usage statistics", func(h handle) error {
		sh, err := cUsageServe(h, addr)
		if err != nil {
			return err
		}
		url, err := cUsageServerURL(sh)
		if err != nil {
			cUsageServerFree(sh)
			return err
		}
		s = &UsageServer{in: u.in, url: string(url), h: sh}
		// Registered while the handle is held for reading: Close, which stops the
		// servers holding it for writing, sees every server started before it.
		u.in.usage.mu.Lock()
		if u.in.usage.servers == nil {
			u.in.usage.servers = map[*UsageServer]struct{}{}
		}
		u.in.usage.servers[s] = struct{}{}
		u.in.usage.mu.Unlock()
		return nil
	})
	return s, err
}

// URL is the server's address as a URL, http://127.0.0.1:PORT (the port chosen when 0
// was asked for).
func (s *UsageServer) URL() string { return s.url }

// Close stops the server, waiting for the request it is answering, if any. It is
// idempotent.
func (s *UsageServer) Close() error {
	s.mu.Lock()
	h := s.h
	s.h = nil
	s.mu.Unlock()
	if h != nil {
		cUsageServerFree(h)
	}
	s.in.usage.mu.Lock()
	delete(s.in.usage.servers, s)
	s.in.usage.mu.Unlock()
	return nil
}

// closeServers stops every server Serve started; Close calls it holding hmu for writing.
func (in *client) closeServers() {
	in.usage.mu.Lock()
	servers := make([]*UsageServer, 0, len(in.usage.servers))
	for s := range in.usage.servers {
		servers = append(servers, s)
	}
	in.usage.mu.Unlock()
	for _, s := range servers {
		_ = s.Close()
	}
}
