package telemetry

import (
	"log/slog"
	"runtime"
	"time"
)

// Profile selects a product's conventions: its opt-out switches, its default, where its
// install id lives and how numbers are rounded. The zero Profile is a generic profile
// named after the product.
type Profile struct{ v any }

// The built-in profiles (DESIGN.md, "Consent").
var (
	// Chroma: ANONYMIZED_TELEMETRY, a .env file, WithExplicit(false); on by default; id in
	// ~/.cache/chroma/telemetry_user_id.
	Chroma = Profile{"chroma"}
	// Qdrant: QDRANT__TELEMETRY_DISABLED, telemetry_disabled in config/config.yaml,
	// --disable-telemetry in WithArgs; a new id each process.
	Qdrant = Profile{"qdrant"}
	// Evidently: EVIDENTLY_DISABLE_TELEMETRY; only with WithMode(ModeCLI).
	Evidently = Profile{"evidently"}
)

// ProductProfile is the generic profile for a product name: <NAME>_TELEMETRY_DISABLED and
// <NAME>_TELEMETRY, on by default, id stored. "chroma", "qdrant" and "evidently" name the
// built-in profiles.
func ProductProfile(name string) Profile { return Profile{name} }

// GenericProfile describes a product the library has no built-in profile for.
type GenericProfile struct {
	// Name of the product, also the prefix of its variables (NAME_TELEMETRY_DISABLED).
	Name string `json:"name"`
	// DefaultEnabled false makes telemetry opt-in: some source has to say on.
	DefaultEnabled bool `json:"default_enabled"`
	// PersistID stores the install id under the user's state directory; false makes a new
	// one each process.
	PersistID bool `json:"persist_id"`
	// Precision is the number of significant digits numbers keep; 0 means the default, 3.
	Precision uint32 `json:"precision,omitempty"`
}

// Generic turns a GenericProfile into a Profile.
func Generic(g GenericProfile) Profile { return Profile{map[string]any{"generic": g}} }

// Mode says how the host runs; some profiles (Evidently) allow telemetry only in a CLI.
type Mode string

// Modes.
const (
	ModeLibrary Mode = "library"
	ModeCLI     Mode = "cli"
)

// Sink says where events go.
type Sink string

// Sinks.
const (
	// SinkPostHog posts batches to the endpoint (the default).
	SinkPostHog Sink = "posthog"
	// SinkFile appends JSON lines to the file given with WithFileSink.
	SinkFile Sink = "file"
	// SinkDebug prints each payload to stderr and sends nothing (also TELEMETRY_DEBUG=1).
	SinkDebug Sink = "debug"
	// SinkMemory keeps delivered events in memory for tests; read them with MemoryEvents.
	SinkMemory Sink = "memory"
)

// config is the JSON configuration the C ABI takes (telemetry-core's ClientConfig).
type config struct {
	Product           string            `json:"product"`
	Version           string            `json:"version"`
	Profile           any               `json:"profile,omitempty"`
	Endpoint          string            `json:"endpoint,omitempty"`
	APIKey            string            `json:"api_key,omitempty"`
	Sink              Sink              `json:"sink,omitempty"`
	FilePath          string            `json:"file_path,omitempty"`
	QueueCapacity     *int              `json:"queue_capacity,omitempty"`
	MaxBatchEvents    *int              `json:"max_batch_events,omitempty"`
	MaxBatchBytes     *int              `json:"max_batch_bytes,omitempty"`
	FlushIntervalMS   *int64            `json:"flush_interval_ms,omitempty"`
	ConnectTimeoutMS  *int64            `json:"connect_timeout_ms,omitempty"`
	CAFile            string            `json:"ca_file,omitempty"`
	TLSRoots          TLSRoots          `json:"tls_roots,omitempty"`
	RequestTimeoutMS  *int64            `json:"request_timeout_ms,omitempty"`
	MaxRetries        *int              `json:"max_retries,omitempty"`
	BackoffBaseMS     *int64            `json:"backoff_base_ms,omitempty"`
	ShutdownTimeoutMS *int64            `json:"shutdown_timeout_ms,omitempty"`
	UsageReports      *bool             `json:"usage_reports,omitempty"`
	UsageReportDelay  *int64            `json:"usage_report_delay_ms,omitempty"`
	UsageReportEvery  *int64            `json:"usage_report_interval_ms,omitempty"`
	Explicit          *bool             `json:"explicit,omitempty"`
	Args              []string          `json:"args,omitempty"`
	ConfigDir         string            `json:"config_dir,omitempty"`
	WorkingDir        string            `json:"working_dir,omitempty"`
	Mode              Mode              `json:"mode,omitempty"`
	Environment       map[string]string `json:"environment"` // nil: the process environment
	InstallID         string            `json:"install_id,omitempty"`
	SecretHex         string            `json:"secret_hex,omitempty"`
	Runtime           string            `json:"runtime"`
	RuntimeVersion    string            `json:"runtime_version"`
	Context           map[string]any    `json:"context,omitempty"`
	Crash             crashConfig       `json:"crash"`
	OTel              *OTelSettings     `json:"otel,omitempty"`

	// Go side only.
	shutdownTimeout time.Duration
	bufferSize      int
	logger          *slog.Logger
	crashDeadline   time.Duration // sent as Crash.DeadlineMS: Go and the library wait alike
}

// crashConfig is the configuration's "crash" object: how error reports are made.
type crashConfig struct {
	DeadlineMS       int64  `json:"deadline_ms"`
	PerFingerprintMS *int64 `json:"per_fingerprint_ms,omitempty"`
	PerHour          *int   `json:"per_hour,omitempty"`
}

func defaultConfig() config {
	return config{
		Runtime:         "go",
		RuntimeVersion:  runtime.Version(),
		shutdownTimeout: time.Second,
		bufferSize:      DefaultBufferSize,
		crashDeadline:   DefaultCrashDeadline,
	}
}

// DefaultBufferSize is how many captured events a client holds in Go before handing them
// to the library in one call; see WithBufferSize.
const DefaultBufferSize = 512

// An Option configures New.
type Option func(*config)

func millis(d time.Duration) *int64 { v := d.Milliseconds(); return &v }

// WithProduct names the host product and its version (required).
func WithProduct(name, version string) Option {
	return func(c *config) { c.Product, c.Version = name, version }
}

// WithProfile follows a product's conventions (default: a generic profile named after the
// product).
func WithProfile(p Profile) Option { return func(c *config) { c.Profile = p.v } }

// WithEndpoint is the PostHog-compatible host, e.g. "https://eu.i.posthog.com" or the
// local collector. Plain http is accepted for loopback addresses only.
func WithEndpoint(url string) Option { return func(c *config) { c.Endpoint = url } }

// WithAPIKey is the project API key sent with each batch.
func WithAPIKey(key string) Option { return func(c *config) { c.APIKey = key } }

// WithSink chooses where events go (default SinkPostHog).
func WithSink(s Sink) Option { return func(c *config) { c.Sink = s } }

// WithFileSink appends each delivered event as a JSON line to path.
func WithFileSink(path string) Option {
	return func(c *config) { c.Sink, c.FilePath = SinkFile, path }
}

// WithExplicit is a setting in the host's code, the strongest "on" and an "off" like any
// other: Chroma's Settings(anonymized_telemetry=False) is WithExplicit(false).
func WithExplicit(enabled bool) Option { return func(c *config) { c.Explicit = &enabled } }

// WithArgs passes the host's command-line arguments (e.g. os.Args), searched for the
// profile's opt-out flag such as Qdrant's --disable-telemetry.
func WithArgs(args []string) Option {
	return func(c *config) { c.Args = append([]string(nil), args...) }
}

// WithMode says whether the host runs as a CLI or a library (default library).
func WithMode(m Mode) Option { return func(c *config) { c.Mode = m } }

// WithWorkingDir is the directory whose .env file is read (default the process's).
func WithWorkingDir(dir string) Option { return func(c *config) { c.WorkingDir = dir } }

// WithConfigDir is the base of the product's config files such as config/config.yaml
// (default the working directory).
func WithConfigDir(dir string) Option { return func(c *config) { c.ConfigDir = dir } }

// WithEnvironment replaces the process environment entirely for this client: consent, the
// home directory and TELEMETRY_DEBUG are read from env instead. For tests and for hosts
// that keep their configuration elsewhere; an empty map means "no variables at all".
func WithEnvironment(env map[string]string) Option {
	return func(c *config) {
		c.Environment = make(map[string]string, len(env))
		for k, v := range env {
			c.Environment[k] = v
		}
	}
}

// WithIdentity fixes the install id (a UUID) and the hashing secret (64 hex characters)
// instead of the profile's stored ones. For tests that compare hashes.
func WithIdentity(installID, secretHex string) Option {
	return func(c *config) { c.InstallID, c.SecretHex = installID, secretHex }
}

// WithContext adds a property sent as is with every event (a fact about the host that is
// not private, e.g. "deployment": "docker").
func WithContext(key string, value any) Option {
	return func(c *config) {
		if c.Context == nil {
			c.Context = map[string]any{}
		}
		c.Context[key] = value
	}
}

// WithQueueCapacity bounds the library's queue (default 10,000); when it is full, new
// events are dropped and counted in Stats.DroppedQueueFull.
func WithQueueCapacity(n int) Option { return func(c *config) { c.QueueCapacity = &n } }

// WithMaxBatchEvents caps the events per request (default 100).
func WithMaxBatchEvents(n int) Option { return func(c *config) { c.MaxBatchEvents = &n } }

// WithMaxBatchBytes caps the bytes per request before compression (default 500 KB).
func WithMaxBatchBytes(n int) Option { return func(c *config) { c.MaxBatchBytes = &n } }

// WithFlushInterval is how often queued events and partial batches go out (default 5 s).
func WithFlushInterval(d time.Duration) Option {
	return func(c *config) { c.FlushIntervalMS = millis(d) }
}

// WithConnectTimeout bounds connecting to the endpoint (default 2 s).
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) { c.ConnectTimeoutMS = millis(d) }
}

// WithCAFile trusts the CA certificates in the PEM file at path for HTTPS, besides the
// roots (see WithTLSRoots): an internal CA that signed https://telemetry.corp.internal.
// It applies to the events and to trace exports, unless the operator's
// OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE or OTEL_EXPORTER_OTLP_CERTIFICATE names another
// file. New reads it: a file that is missing or holds no certificate is ErrInvalidConfig
// naming the file. Without it, a collector signed by an internal CA is refused on its
// certificate: each batch is dropped and counted (Stats.DroppedFailed), never retried.
func WithCAFile(path string) Option { return func(c *config) { c.CAFile = path } }

// TLSRoots is where the roots trusted for HTTPS come from; WithCAFile adds to either.
type TLSRoots string

// The roots.
const (
	// TLSRootsBundled: Mozilla's root certificates, compiled into the library, the same
	// on every machine (the default).
	TLSRootsBundled TLSRoots = "bundled"
	// TLSRootsPlatform: the system's, through the platform's verifier (the system store
	// on Linux, the Security framework on macOS, CryptoAPI on Windows), so CAs an
	// administrator installed are trusted.
	TLSRootsPlatform TLSRoots = "platform"
)

// WithTLSRoots chooses the roots trusted for HTTPS, for events and trace exports
// (default TLSRootsBundled).
func WithTLSRoots(r TLSRoots) Option { return func(c *config) { c.TLSRoots = r } }

// WithRequestTimeout bounds a whole request (default 5 s).
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) { c.RequestTimeoutMS = millis(d) }
}

// WithMaxRetries is the number of retries after a failed attempt (default 3).
func WithMaxRetries(n int) Option { return func(c *config) { c.MaxRetries = &n } }

// WithBackoffBase is the first retry delay, doubled each retry, with jitter (default 200 ms).
func WithBackoffBase(d time.Duration) Option {
	return func(c *config) { c.BackoffBaseMS = millis(d) }
}

// WithShutdownTimeout is how long Close waits for the last events when its context has no
// deadline, and how long a client that is garbage collected without Close waits (default
// 1 s).
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) { c.ShutdownTimeoutMS = millis(d); c.shutdownTimeout = d }
}

// WithUsageReports says whether an enabled client sends its usage report (Client.Usage)
// home (default true). An opted-out client never sends it; the local report, /metrics and
// /telemetry work either way.
func WithUsageReports(send bool) Option { return func(c *config) { c.UsageReports = &send } }

// WithUsageReportDelay is how long after the first recording an enabled client sends its
// first usage report (default 10 s).
func WithUsageReportDelay(d time.Duration) Option {
	return func(c *config) { c.UsageReportDelay = millis(d) }
}

// WithUsageReportInterval is how often an enabled client sends its usage report after the
// first (default 1 h); one more goes out at Close.
func WithUsageReportInterval(d time.Duration) Option {
	return func(c *config) { c.UsageReportEvery = millis(d) }
}

// WithBufferSize sets how many captured events the client holds in Go before handing them
// to the library in one call (default DefaultBufferSize). When the buffer is full, the
// Capture that finds it full hands it over itself, so events are never lost in Go: a full
// library queue drops and counts them as usual.
func WithBufferSize(n int) Option { return func(c *config) { c.bufferSize = n } }

// WithLogger sends the library's log records to logger: a warning when delivery fails and
// events are dropped (one per failure streak, however long the endpoint stays down), an
// info when delivery works again, and a warning at New for each consent value that was not
// understood (which means off). Each record keeps the time it was written and carries the
// Rust module that wrote it as the attribute "target". Without WithLogger (or with nil)
// nothing is printed: the records are not even kept.
//
// No library thread calls into Go: the records are taken by this package's goroutines,
// the one calling New, Flush or Close, and the client's sender goroutine, which polls
// every second while the library still holds events, so a failure on an idle client is
// logged within a few seconds. An opted-out client logs its consent warnings in New and
// nothing afterwards, unless it traces: then the span exporter's warnings (one per failure
// streak) and bad observability settings are logged too, taken in New, FlushSpans and
// Close. A Handler may call into this package.
//
// The library's log is process-wide: a record does not say which client wrote it (a
// delivery message names the endpoint). With several clients, every distinct logger of a
// live client receives every record; give them the same *slog.Logger to log each once.
func WithLogger(logger *slog.Logger) Option { return func(c *config) { c.logger = logger } }

// DefaultCrashDeadline is how long a crash waits at most for its report; see
// WithCrashDeadline.
const DefaultCrashDeadline = time.Second

// WithCrashDeadline is how long a crash reported by ReportPanic waits at most for its
// report's delivery before the program goes on dying (default DefaultCrashDeadline). Only
// the first report of a fingerprint in the process waits, and only while the endpoint has
// not answered; whatever the endpoint does, the crash is delayed by at most d, a Close
// deferred around the crash included. Zero means a crash never waits: its report leaves
// only if the program lives on.
func WithCrashDeadline(d time.Duration) Option { return func(c *config) { c.crashDeadline = d } }

// WithCrashRateLimits bounds how many error reports go out (crashes and handled errors
// alike): at most one per fingerprint (the type and the program's own innermost frames)
// every perFingerprint, and at most perHour in any hour (defaults 60 s and 20). What is
// held back is counted, and the count goes out with the next report. A crash loop or a
// panic storm therefore sends a handful of reports, not thousands.
func WithCrashRateLimits(perFingerprint time.Duration, perHour int) Option {
	return func(c *config) {
		c.Crash.PerFingerprintMS = millis(perFingerprint)
		c.Crash.PerHour = &perHour
	}
}
