// Command usagelike is a small Qdrant-like vector service in Go that keeps usage
// statistics through telemetry-core, the way Qdrant does: every REST request timed by
// route and status, searches timed as operations (failures counted), upserted points
// counted per collection, and a "collections" section pushed when it changes. The service
// serves its own numbers at /metrics (Prometheus) and /telemetry (the report) with the
// package's handlers, and an enabled client sends the anonymized report home every hour.
//
//	usagelike                                  # serve on 127.0.0.1:6333 until interrupted
//	usagelike -requests 50                     # drive 50 requests at itself, print /metrics, exit
//	usagelike -endpoint http://127.0.0.1:8765  # report to the local collector
//	QDRANT__TELEMETRY_DISABLED=1 usagelike     # statistics stay local: nothing is sent
//
// Without -endpoint the report is printed to stderr instead of sent (the debug sink).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6333", "address to serve the API, /metrics and /telemetry on")
	endpoint := flag.String("endpoint", os.Getenv("TELEMETRY_DEMO_ENDPOINT"), "PostHog-compatible host (empty: print the report instead of sending it)")
	apiKey := flag.String("api-key", "phc_usagelike_demo", "project API key")
	requests := flag.Int("requests", 0, "send this many requests to the service itself, print its /metrics and exit (0: serve until interrupted)")
	flag.Parse()

	opts := []telemetry.Option{
		telemetry.WithProduct("usagelike", "0.1.0"),
		telemetry.WithProfile(telemetry.Qdrant), // QDRANT__TELEMETRY_DISABLED, --disable-telemetry
		telemetry.WithArgs(os.Args),
	}
	if *endpoint != "" {
		opts = append(opts, telemetry.WithEndpoint(*endpoint), telemetry.WithAPIKey(*apiKey))
	} else {
		opts = append(opts, telemetry.WithSink(telemetry.SinkDebug))
	}
	tel, err := telemetry.New(opts...)
	if err != nil {
		log.Fatalf("telemetry: %v", err)
	}
	fmt.Fprintln(os.Stderr, tel.Decision())

	svc, err := newService(tel.Usage())
	if err != nil {
		log.Fatalf("usage statistics: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	server := &http.Server{Handler: svc.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := server.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(os.Stderr, "usagelike: serving on %s (/metrics, /telemetry?details_level=2)\n", base)

	if *requests > 0 {
		if err := drive(base, *requests); err != nil {
			log.Fatal(err)
		}
		metrics, err := get(base + "/metrics")
		if err != nil {
			log.Fatal(err)
		}
		for _, line := range strings.Split(metrics, "\n") {
			if strings.Contains(line, "_count") || strings.Contains(line, "_total") {
				fmt.Println(line)
			}
		}
	} else {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		<-stop
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = server.Shutdown(ctx)
	if err := tel.Close(ctx); err != nil { // sends the last report if telemetry is on
		log.Printf("telemetry: %v", err)
	}
}

// service is the vector store and its usage statistics.
type service struct {
	usage    *telemetry.Usage
	rest     *telemetry.TimingFamily
	search   *telemetry.Timing
	upserted *telemetry.CounterFamily

	// handles keeps one timing per route and status: taken once, then recording is a few
	// atomic additions (the family's label sets are bounded by the core anyway).
	handles sync.Map // "route\x00status" -> *telemetry.Timing

	mu          sync.Mutex
	collections map[string][][]float64
}

func newService(usage *telemetry.Usage) (*service, error) {
	rest, err := usage.Timing("rest_responses",
		telemetry.Help("REST requests by route and status"),
		telemetry.Label("route", telemetry.KindSafe), // the route template, never the URL
		telemetry.Label("status", telemetry.KindSafe))
	if err != nil {
		return nil, err
	}
	searches, err := usage.Timing("search", telemetry.Help("Vector searches"),
		telemetry.Buckets(100*time.Microsecond, time.Millisecond, 10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	search, err := searches.With()
	if err != nil {
		return nil, err
	}
	upserted, err := usage.Counter("points_upserted", telemetry.Help("Points written"),
		telemetry.Label("collection", telemetry.KindHashed)) // names are the user's: hashed
	if err != nil {
		return nil, err
	}
	return &service{usage: usage, rest: rest, search: search, upserted: upserted,
		collections: map[string][][]float64{}}, nil
}

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /collections", s.list)
	mux.HandleFunc("PUT /collections/{name}/points", s.upsert)
	mux.HandleFunc("POST /collections/{name}/points/search", s.searchPoints)
	api := s.timed(mux)
	top := http.NewServeMux()
	top.Handle("/metrics", s.usage.MetricsHandler())
	top.Handle("/telemetry", s.usage.TelemetryHandler())
	top.Handle("/", api)
	return top
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// timed times every API request by its route template and status.
func (s *service) timed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(sw, r)
		_, route := mux.Handler(r) // the pattern, e.g. "PUT /collections/{name}/points"
		if route == "" {
			route = "unmatched"
		}
		s.timing(route, sw.status).Observe(time.Since(start))
	})
}

func (s *service) timing(route string, status int) *telemetry.Timing {
	key := route + "\x00" + strconv.Itoa(status)
	if t, ok := s.handles.Load(key); ok {
		return t.(*telemetry.Timing)
	}
	t, err := s.rest.With(route, strconv.Itoa(status))
	if err != nil {
		log.Printf("telemetry: %v", err) // never fails a request
		return nil                       // a nil *Timing records nothing
	}
	actual, _ := s.handles.LoadOrStore(key, t)
	return actual.(*telemetry.Timing)
}

func (s *service) list(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.collections))
	for name := range s.collections {
		names = append(names, name)
	}
	s.mu.Unlock()
	sort.Strings(names)
	writeJSON(w, http.StatusOK, map[string]any{"collections": names})
}

func (s *service) upsert(w http.ResponseWriter, r *http.Request) {
	var body struct{ Points [][]float64 }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Points) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "expected {\"points\": [[...], ...]}"})
		return
	}
	name := r.PathValue("name")
	s.mu.Lock()
	s.collections[name] = append(s.collections[name], body.Points...)
	section := s.sectionLocked()
	s.mu.Unlock()
	if err := s.upserted.Add(uint64(len(body.Points)), name); err != nil {
		log.Printf("telemetry: %v", err)
	}
	// Pushed from this goroutine whenever it changes; the library never calls back.
	if err := s.usage.SetSection("collections", section,
		map[string]telemetry.Kind{"number_of_collections": telemetry.KindExact, "points": telemetry.KindNumber}, 2); err != nil {
		log.Printf("telemetry: %v", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// sectionLocked is the collections section: their number and, per collection, its name
// (hashed when sent: undeclared strings are) and point count (rounded).
func (s *service) sectionLocked() map[string]any {
	var items []map[string]any
	for name, points := range s.collections {
		items = append(items, map[string]any{"id": name, "points": len(points)})
	}
	sort.Slice(items, func(i, j int) bool { return items[i]["id"].(string) < items[j]["id"].(string) })
	return map[string]any{"number_of_collections": len(items), "collections": items}
}

var errNoCollection = errors.New("no such collection")

func (s *service) searchPoints(w http.ResponseWriter, r *http.Request) {
	var body struct{ Vector []float64 }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "expected {\"vector\": [...]}"})
		return
	}
	best, err := s.nearest(r.PathValue("name"), body.Vector)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": best})
}

// nearest is one search: a failure (no collection) is counted, a success timed.
func (s *service) nearest(name string, v []float64) (best int, err error) {
	defer s.search.Start().Done(&err)
	s.mu.Lock()
	defer s.mu.Unlock()
	points, ok := s.collections[name]
	if !ok {
		return 0, errNoCollection
	}
	bestDist := math.Inf(1)
	for i, p := range points {
		d := 0.0
		for j := range p {
			if j < len(v) {
				d += (p[j] - v[j]) * (p[j] - v[j])
			}
		}
		if d < bestDist {
			best, bestDist = i, d
		}
	}
	return best, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// drive sends n requests to the service: upserts, searches (some to a missing
// collection) and listings.
func drive(base string, n int) error {
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < n; i++ {
		var req *http.Request
		var err error
		switch i % 4 {
		case 0:
			body := fmt.Sprintf(`{"points": [[%d, 1], [%d, 2]]}`, i, i+1)
			req, err = http.NewRequest(http.MethodPut, base+"/collections/docs/points", strings.NewReader(body))
		case 1, 2:
			name := "docs"
			if i%8 == 2 {
				name = "missing"
			}
			req, err = http.NewRequest(http.MethodPost, base+"/collections/"+name+"/points/search", strings.NewReader(`{"vector": [3, 1]}`))
		default:
			req, err = http.NewRequest(http.MethodGet, base+"/collections", nil)
		}
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	return nil
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}
