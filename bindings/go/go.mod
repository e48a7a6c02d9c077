module github.com/telemetry-core/telemetry-core/bindings/go

go 1.22
