module github.com/telemetry-core/telemetry-core/tests/senders/go

go 1.24.0

require github.com/posthog/posthog-go v1.5.2
