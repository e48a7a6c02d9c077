module github.com/telemetry-core/telemetry-core/bindings/go/bench

go 1.22

require github.com/telemetry-core/telemetry-core/bindings/go v0.0.0

require github.com/posthog/posthog-go v1.5.2

replace github.com/telemetry-core/telemetry-core/bindings/go => ../
