package telemetry

// The library's log records reach the *slog.Logger given WithLogger: the one warning per
// failure streak ("delivery to ... failed (...): dropped 2 events; ..."), the info when
// delivery works again, and the warnings about consent values that were not understood.
//
// No library thread ever calls into Go. The library keeps its records in a small bounded
// queue (crates/telemetry-ffi/src/log.rs, at most 64, the rest counted) and this file takes
// them on the package's own goroutines: the one calling New, Flush or Close, and each
// enabled client's sender goroutine, which takes them after handing events over and polls
// while the library still holds events (logPollInterval), so a failure on an idle client
// is reported within a few seconds.
//
// The records are process-wide, as Rust's log facade is: a record does not say which
// client wrote it (a delivery message names its endpoint). So every distinct logger of a
// live client receives every record, and the library keeps records only while at least
// one client has a logger; with none, nothing is kept and nothing is printed.

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// logPollInterval is how often an enabled client with a logger takes the library's log
// records while the events it handed over are still in the library.
const logPollInterval = time.Second

// logRecord is one record as telemetry_log_take writes it.
type logRecord struct {
	Level   string `json:"level"`
	Target  string `json:"target"`
	Message string `json:"message"`
	UnixMS  int64  `json:"unix_ms"`
}

var logs struct {
	mu sync.Mutex
	// users counts the live clients of each logger; the library keeps records while it is
	// not empty.
	users map[*slog.Logger]int
	// pending are records taken from the library and not yet handed to the loggers, in
	// order. One goroutine at a time hands them over (dispatching); a goroutine that takes
	// records meanwhile (a Flush, or a Handler that calls into this package) leaves them
	// to it, so records keep their order and a Handler never deadlocks on this lock.
	pending     []logRecord
	dispatching bool
}

// acquireLogger registers a client's logger; the first one turns keeping on in the
// library. Called before the library's client is built, so its consent warnings are kept.
func acquireLogger(l *slog.Logger) {
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.users == nil {
		logs.users = map[*slog.Logger]int{}
	}
	if len(logs.users) == 0 {
		// It reports false only when another logger owns the library's Rust log facade,
		// which a Go program cannot arrange: the static library's facade is its own.
		cLogEnable(true)
	}
	logs.users[l]++
}

// releaseLogger hands what the library holds to the loggers (l still among them), then
// unregisters l; after the last logger, the library stops keeping records.
func releaseLogger(l *slog.Logger) {
	drainLogs()
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.users[l]--; logs.users[l] <= 0 {
		delete(logs.users, l)
	}
	if len(logs.users) == 0 {
		cLogEnable(false)
	}
}

// drainLogs takes the library's pending records and hands them to every registered
// logger, unless another goroutine is handing records over already: that one hands these
// over too, right after its own.
func drainLogs() {
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.users) == 0 {
		return
	}
	if text, err := cLogTake(); err == nil {
		var taken []logRecord
		if json.Unmarshal(text, &taken) == nil {
			logs.pending = append(logs.pending, taken...)
		}
	}
	if logs.dispatching {
		return
	}
	logs.dispatching = true
	defer func() { logs.dispatching = false }()
	for len(logs.pending) > 0 {
		batch := logs.pending
		logs.pending = nil
		loggers := make([]*slog.Logger, 0, len(logs.users))
		for l := range logs.users {
			loggers = append(loggers, l)
		}
		emitUnlocked(batch, loggers)
	}
}

// emitUnlocked hands batch to the loggers without holding logs.mu, which it takes back
// even when a Handler panics (the panic then goes on to the caller).
func emitUnlocked(batch []logRecord, loggers []*slog.Logger) {
	logs.mu.Unlock()
	defer logs.mu.Lock()
	for _, r := range batch {
		for _, l := range loggers {
			r.emit(l)
		}
	}
}

// emit hands r to l at its own level and with the time the library wrote it, which may be
// a second or more before it was taken. The Rust module that wrote it is the attribute
// "target".
func (r logRecord) emit(l *slog.Logger) {
	ctx := context.Background()
	level := slogLevel(r.Level)
	if !l.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(time.UnixMilli(r.UnixMS), level, r.Message, 0)
	rec.AddAttrs(slog.String("target", r.Target))
	_ = l.Handler().Handle(ctx, rec)
}

func slogLevel(level string) slog.Level {
	switch level {
	case "error":
		return slog.LevelError
	case "warn":
		return slog.LevelWarn
	case "debug":
		return slog.LevelDebug
	case "trace":
		return slog.LevelDebug - 4
	}
	return slog.LevelInfo
}

// libraryQueued is how many events the library holds, neither sent nor dropped yet.
func (in *client) libraryQueued() uint64 {
	in.hmu.RLock()
	defer in.hmu.RUnlock()
	if in.h == nil {
		return 0
	}
	text, err := cStats(in.h)
	if err != nil {
		return 0
	}
	var s Stats
	if json.Unmarshal(text, &s) != nil {
		return 0
	}
	return s.Queued
}
