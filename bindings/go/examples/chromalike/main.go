// Command chromalike is a small Go service that talks to a Chroma-like vector store over
// HTTP and reports its own usage through telemetry-core, the way Chroma's client does:
// a client_start event, then collection_add and collection_query events merged per
// collection by Chroma's batch keys. The opt-outs are read from the real environment
// (Chroma's ANONYMIZED_TELEMETRY, and DO_NOT_TRACK), exactly as Chroma users set them.
//
// It also traces its operations for the operator, independently of telemetry: each
// operation (create_collection, collection.add, collection.query) is a span, each HTTP
// request a client span under it (HTTPTransport), and the request carries a W3C
// traceparent, so a traced server joins the trace. Traces are configured from the
// environment the way Chroma operators configure Chroma: CHROMA_OTEL_COLLECTION_ENDPOINT
// (gRPC by default), CHROMA_OTEL_SERVICE_NAME, CHROMA_OTEL_COLLECTION_HEADERS,
// CHROMA_OTEL_GRANULARITY, and the standard OTEL_* variables; without an endpoint
// nothing is traced.
//
// By default it starts its own tiny Chroma-like server on loopback (traced too, with
// HTTPHandler); -server talks to an external one with the same API instead.
//
//	chromalike -endpoint http://127.0.0.1:8765   # the local collector (make demo does this)
//	chromalike                                   # no endpoint: payloads printed to stderr
//	ANONYMIZED_TELEMETRY=False chromalike ...    # nothing sent, nothing written
//	CHROMA_OTEL_COLLECTION_ENDPOINT=http://127.0.0.1:4317 chromalike -server http://127.0.0.1:8000
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/telemetry-core/telemetry-core/bindings/go/telemetry"
)

func main() {
	endpoint := flag.String("endpoint", os.Getenv("TELEMETRY_DEMO_ENDPOINT"), "PostHog-compatible host (empty: print payloads instead of sending)")
	apiKey := flag.String("api-key", "phc_chromalike_demo", "project API key")
	docs := flag.Int("docs", 120, "documents to add")
	queries := flag.Int("queries", 10, "queries to run")
	external := flag.String("server", "", "URL of a Chroma-like server to talk to (empty: start one of our own on loopback)")
	flag.Parse()

	opts := []telemetry.Option{
		telemetry.WithProduct("chromalike-go", "0.1.0"),
		telemetry.WithProfile(telemetry.Chroma),
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
	fmt.Println(tel.Decision())
	if tc := tel.TraceConfig(); tc.Active {
		fmt.Printf("traces: %s to %s over %s as %s\n", tc.Granularity, tc.Endpoint, tc.Protocol, tc.ServiceName)
	}
	for _, w := range tel.TraceConfig().Warnings {
		log.Printf("traces: %s", w)
	}

	base := strings.TrimRight(*external, "/")
	if base == "" {
		server, stop := startServer(tel)
		defer stop()
		base = "http://" + server
	}
	// Each request is a client span under the operation's span and carries traceparent.
	db := &chromaClient{base: base, http: &http.Client{Timeout: 5 * time.Second, Transport: tel.HTTPTransport(nil)}, tel: tel}
	db.report("client_start", map[string]any{
		"is_persistent": telemetry.Safe(false),
		"api_impl":      telemetry.Safe("http"),
	}, nil)

	id, err := db.createCollection("docs")
	if err != nil {
		log.Fatal(err)
	}
	for start := 0; start < *docs; start += 20 {
		var batch []string
		for i := start; i < start+20 && i < *docs; i++ {
			batch = append(batch, fmt.Sprintf("document %d about %s", i, []string{"rust", "go", "python"}[i%3]))
		}
		if err := db.add(id, batch); err != nil {
			log.Fatal(err)
		}
	}
	found := 0
	for i := 0; i < *queries; i++ {
		ids, err := db.query(id, []string{[]string{"rust", "go", "python"}[i%3]}, 3)
		if err != nil {
			log.Fatal(err)
		}
		found += len(ids)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Close(ctx); err != nil { // sends the last events and spans
		log.Printf("telemetry: %v", err)
	}
	s := tel.Stats()
	fmt.Printf("chromalike-go: added %d documents in %d calls, ran %d queries (%d hits); telemetry %s: %d events captured, %d sent as %d merged events, %d dropped\n",
		*docs, (*docs+19)/20, *queries, found, onOff(tel.Enabled()), s.Captured, s.Sent, s.Sent-s.Merged,
		s.DroppedQueueFull+s.DroppedShutdown+s.DroppedFailed)
	if tel.TraceConfig().Active {
		t := tel.SpanStats()
		fmt.Printf("chromalike-go: traces: %d spans recorded, %d exported, %d dropped\n",
			t.Recorded, t.Exported, t.DroppedQueueFull+t.DroppedFailed+t.DroppedShutdown)
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// chromaClient is the service's client for the vector store; every call reports its usage.
type chromaClient struct {
	base string
	http *http.Client
	tel  *telemetry.Client
}

// report captures an event; telemetry never fails the service, so errors are only logged.
func (c *chromaClient) report(event string, props map[string]any, batch *telemetry.BatchRule) {
	if err := c.tel.CaptureEvent(telemetry.Event{Name: event, Properties: props, Batch: batch}); err != nil {
		log.Printf("telemetry: %v", err)
	}
}

// post sends one request inside the operation's span (ctx carries it).
func (c *chromaClient) post(ctx context.Context, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// operation starts the span of one client operation; end it with its error.
func (c *chromaClient) operation(name string, attrs ...telemetry.Attribute) (context.Context, func(error)) {
	ctx, span := c.tel.StartSpan(context.Background(), name, telemetry.GranularityOperation,
		telemetry.WithAttributes(attrs...))
	return ctx, func(err error) {
		span.RecordError(err)
		span.End()
	}
}

func (c *chromaClient) createCollection(name string) (_ string, err error) {
	ctx, end := c.operation("create_collection", telemetry.StringAttr("collection.name", name))
	defer func() { end(err) }()
	var out struct{ ID string }
	if err := c.post(ctx, "/api/v1/collections", map[string]any{"name": name}, &out); err != nil {
		return "", err
	}
	c.report("create_collection", map[string]any{
		"collection_uuid":    telemetry.Hashed(out.ID),
		"embedding_function": telemetry.Safe("default"),
	}, nil)
	return out.ID, nil
}

func (c *chromaClient) add(collection string, documents []string) (err error) {
	ctx, end := c.operation("collection.add", telemetry.StringAttr("collection.id", collection),
		telemetry.IntAttr("documents", len(documents)))
	defer func() { end(err) }()
	var out struct{ Added int }
	if err := c.post(ctx, "/api/v1/collections/"+collection+"/add", map[string]any{"documents": documents}, &out); err != nil {
		return err
	}
	// Chroma's CollectionAddEvent: merged per collection, up to 3000 calls per event, with
	// the amounts summed so the totals stay exact.
	c.report("collection_add", map[string]any{
		"collection_uuid": telemetry.Hashed(collection),
		"add_amount":      len(documents),
		"with_documents":  len(documents),
		"with_metadata":   0,
	}, &telemetry.BatchRule{
		Key:     collection + "collection_add",
		MaxSize: 3000,
		Sum:     []string{"add_amount", "with_documents", "with_metadata"},
	})
	return nil
}

func (c *chromaClient) query(collection string, texts []string, n int) (_ []string, err error) {
	ctx, end := c.operation("collection.query", telemetry.StringAttr("collection.id", collection),
		telemetry.IntAttr("query_texts", len(texts)), telemetry.IntAttr("n_results", n))
	defer func() { end(err) }()
	var out struct{ IDs []string }
	if err := c.post(ctx, "/api/v1/collections/"+collection+"/query", map[string]any{"query_texts": texts, "n_results": n}, &out); err != nil {
		return nil, err
	}
	c.report("collection_query", map[string]any{
		"collection_uuid":      telemetry.Hashed(collection),
		"query_amount":         len(texts),
		"n_results":            n,
		"with_metadata_filter": 0,
	}, &telemetry.BatchRule{
		Key:     collection + "collection_query",
		MaxSize: 3000,
		Sum:     []string{"query_amount", "n_results", "with_metadata_filter"},
	})
	return out.IDs, nil
}

// startServer runs a Chroma-like store on a free loopback port: collections of documents,
// added and queried over HTTP (a word match stands in for embeddings). Its requests are
// server spans continuing the caller's trace (HTTPHandler).
func startServer(tel *telemetry.Client) (addr string, stop func()) {
	var mu sync.Mutex
	collections := map[string][]string{}
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /api/v1/collections", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Name == "" {
			http.Error(w, "a collection needs a name", http.StatusBadRequest)
			return
		}
		raw := make([]byte, 16)
		_, _ = rand.Read(raw)
		id := hex.EncodeToString(raw)
		mu.Lock()
		collections[id] = nil
		mu.Unlock()
		reply(w, map[string]any{"id": id, "name": in.Name})
	})
	mux.HandleFunc("POST /api/v1/collections/{id}/add", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Documents []string }
		if json.NewDecoder(r.Body).Decode(&in) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		docs, ok := collections[r.PathValue("id")]
		if !ok {
			http.Error(w, "no such collection", http.StatusNotFound)
			return
		}
		collections[r.PathValue("id")] = append(docs, in.Documents...)
		reply(w, map[string]any{"added": len(in.Documents)})
	})
	mux.HandleFunc("POST /api/v1/collections/{id}/query", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			QueryTexts []string `json:"query_texts"`
			NResults   int      `json:"n_results"`
		}
		if json.NewDecoder(r.Body).Decode(&in) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		docs, ok := collections[r.PathValue("id")]
		mu.Unlock()
		if !ok {
			http.Error(w, "no such collection", http.StatusNotFound)
			return
		}
		var ids []string
		for i, d := range docs {
			for _, q := range in.QueryTexts {
				if strings.Contains(d, q) {
					ids = append(ids, fmt.Sprintf("doc-%d", i))
					break
				}
			}
		}
		sort.Strings(ids)
		if len(ids) > in.NResults {
			ids = ids[:in.NResults]
		}
		reply(w, map[string]any{"ids": ids})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: tel.HTTPHandler(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }
}
