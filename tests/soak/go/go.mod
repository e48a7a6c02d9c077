module github.com/telemetry-core/telemetry-core/tests/soak/go

go 1.24.0

require github.com/telemetry-core/telemetry-core/bindings/go v0.0.0

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.opentelemetry.io/otel v1.40.0 // indirect
	go.opentelemetry.io/otel/trace v1.40.0 // indirect
)

replace github.com/telemetry-core/telemetry-core/bindings/go => ../../../bindings/go
