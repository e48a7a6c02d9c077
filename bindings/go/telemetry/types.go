package telemetry

// Decision is the outcome of consent resolution with its explanation.
type Decision struct {
	// Enabled reports whether telemetry may run.
	Enabled bool `json:"enabled"`
	// DecidedBy is the source that decided (kind "default" when no source said anything).
	DecidedBy *Source `json:"decided_by"`
	// Sources are every source read, in resolution order, the default last.
	Sources []Source `json:"sources"`
	// Warnings are problems met while reading sources, such as a value that is neither
	// true nor false (which means off).
	Warnings []string `json:"warnings"`
	// Explanation is the decision rendered for people, as `telemetry status` prints it.
	Explanation string `json:"explanation"`
}

// String is the explanation for people.
func (d Decision) String() string { return d.Explanation }

// Source is one consent source and what it said.
type Source struct {
	// Kind is code, cli_flag, env, config_file, dotenv, user_choice, do_not_track, mode or
	// default.
	Kind string `json:"kind"`
	// Name is the variable, the file, "explicit setting", or for the default the profile.
	Name string `json:"name"`
	// Value is the raw value as shown to people, nil when absent.
	Value *string `json:"value"`
	// Says is on, off or unset (absent from DecidedBy).
	Says string `json:"says,omitempty"`
}

// Stats are the delivery counters. Sent + DroppedQueueFull + DroppedShutdown +
// DroppedFailed + Queued = Captured.
type Stats struct {
	// Captured counts events offered to an enabled client.
	Captured uint64 `json:"captured"`
	// Merged counts events merged into another by a batch rule.
	Merged uint64 `json:"merged"`
	// Sent counts captured events delivered (a merged event counts every event in it).
	Sent uint64 `json:"sent"`
	// DroppedQueueFull counts events refused because the queue was full.
	DroppedQueueFull uint64 `json:"dropped_queue_full"`
	// DroppedShutdown counts events that could not go out before the shutdown deadline.
	DroppedShutdown uint64 `json:"dropped_shutdown"`
	// DroppedFailed counts events given up after the last retry or a permanent refusal.
	DroppedFailed uint64 `json:"dropped_failed"`
	// Queued counts events neither sent nor dropped yet.
	Queued uint64 `json:"queued"`
	// FailedRequests counts failed requests, each attempt.
	FailedRequests uint64 `json:"failed_requests"`
	// Retries counts retried attempts.
	Retries uint64 `json:"retries"`
}
