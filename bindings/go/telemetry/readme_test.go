//go:build cgo

package telemetry

// The READMEs' Go code is real code: every ```go block of README.md (the repository's) and
// bindings/go/README.md is a complete program, built here as the main package of a module
// of its own that depends on this one through a replace directive, and run with
// TELEMETRY_DEBUG=1, so it prints the payloads it would send and sends nothing. A block
// that does not build, does not run, or sends nothing (no event it captures, no error
// report it makes, no span it starts: a block that traces runs with
// OTEL_EXPORTER_OTLP_ENDPOINT naming the real OTLP receiver) fails the test.

import (
	"bytes"
	"context"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// modulePath is this module's path (bindings/go/go.mod).
const modulePath = "github.com/telemetry-core/telemetry-core/bindings/go"

// The READMEs whose Go blocks must build and run, relative to the repository's root.
var readmes = []string{"README.md", "bindings/go/README.md"}

// repoRoot is the repository's root: this package is bindings/go/telemetry.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bindings", "go", "go.mod")); err != nil {
		t.Fatalf("not the repository's root: %s (%v)", root, err)
	}
	return root
}

// fencedBlock is one ``` block of a Markdown file.
type fencedBlock struct {
	lang string // the info string's first word: go, sh, text, ...
	line int    // of the opening fence, from 1
	body string
}

var fence = regexp.MustCompile("^```\\s*([A-Za-z0-9_+-]*)")

// fencedBlocks returns the fenced blocks of a Markdown text, in order.
func fencedBlocks(text string) []fencedBlock {
	var blocks []fencedBlock
	var open *fencedBlock
	var body strings.Builder
	for i, line := range strings.Split(text, "\n") {
		if open == nil {
			if m := fence.FindStringSubmatch(line); m != nil {
				open = &fencedBlock{lang: m[1], line: i + 1}
				body.Reset()
			}
			continue
		}
		if strings.TrimSpace(line) == "```" {
			open.body = body.String()
			blocks = append(blocks, *open)
			open = nil
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	return blocks
}

// goBlocks reads the ```go blocks of the README at rel (relative to the root).
func goBlocks(t *testing.T, root, rel string) []fencedBlock {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var out []fencedBlock
	for _, b := range fencedBlocks(string(text)) {
		if b.lang == "go" {
			out = append(out, b)
		}
	}
	return out
}

// goCommand runs the go command that runs this test, in dir, with the environment a user
// would have: none of the test run's own settings (GOGC=1 would make the compiler crawl,
// GOFLAGS could carry -mod=vendor), no network (the module needs none), cgo on unless
// extra says otherwise.
func goCommand(t *testing.T, dir string, extra []string, args ...string) ([]byte, error) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command: %v", err)
	}
	env := []string{"GOFLAGS=", "GOWORK=off", "GOPROXY=off", "GOTOOLCHAIN=local", "CGO_ENABLED=1"}
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GOGC", "GODEBUG", "GOFLAGS", "GOWORK", "GOPROXY", "GOTOOLCHAIN", "CGO_ENABLED", "GOOS", "GOARCH":
		default:
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(env, extra...)
	return cmd.CombinedOutput()
}

// runProgram runs a built program in a fresh working directory with only the variables
// given (and PATH), as a user's shell would start it; it returns stdout and stderr.
func runProgram(t *testing.T, bin string, env ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), err, &stdout, &stderr)
	}
	return stdout.String(), stderr.String()
}

// runReadmeProgram runs the README's first program (built at bin) against the collector
// at url, requires it to report no delivery problem and the collector to hold exactly one
// app_started event, and returns that event's properties.
func runReadmeProgram(t *testing.T, bin, url string) map[string]any {
	t.Helper()
	_, stderr := runProgram(t, bin, "HOME="+t.TempDir(), "MYAPP_TELEMETRY_ENDPOINT="+url)
	if strings.Contains(stderr, "WARN") || strings.Contains(stderr, "telemetry: flush") {
		t.Errorf("the program reported a delivery problem:\n%s", stderr)
	}
	var rows []storedEvent
	getJSON(t, url+"/api/events?event=app_started", &rows)
	if len(rows) != 1 {
		t.Fatalf("the collector stored %d app_started events, want 1; the program said:\n%s", len(rows), stderr)
	}
	return rows[0].Properties
}

// writeModule makes dir the module path (main package main.go holding program) that
// depends on this module through a replace directive to the checkout, then runs go mod
// tidy, as an integrator would: it records this module's own dependencies
// (go.opentelemetry.io/otel/trace) and their checksums, from the module cache.
func writeModule(t *testing.T, dir, path, program string) {
	t.Helper()
	root := repoRoot(t)
	gomod := fmt.Sprintf("module %s\n\ngo 1.24\n\nrequire %s v0.0.0\n\nreplace %s => %s\n",
		path, modulePath, modulePath, filepath.Join(root, "bindings", "go"))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	seedGoSum(t, filepath.Join(root, "bindings", "go"), dir)
	if out, err := goCommand(t, dir, nil, "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
}

// seedGoSum copies the go.sum of the module in from into the test's module in dir, unless
// dir has one. These tests run the go command with GOPROXY=off, so it cannot ask the
// checksum database (sum.golang.org, which a user's go command reaches through the proxy)
// about the package's dependencies, and a test reaches nothing off loopback anyway. The
// repository's go.sum holds those checksums, verified when they were added.
func seedGoSum(t *testing.T, from, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); err == nil {
		return
	}
	sums, err := os.ReadFile(filepath.Join(from, "go.sum"))
	if err != nil {
		t.Fatalf("the go.sum to seed a test module with: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
}

var captured = regexp.MustCompile(`\.Capture\("([^"]+)"`)

var reports = regexp.MustCompile(`\.Capture(Error|Panic)\(`)

// spanNames are the names a block gives StartSpan.
var spanNames = regexp.MustCompile(`\.StartSpan\([^,]+, "([^"]+)"`)

func TestReadmeGoBlocksBuildAndRun(t *testing.T) {
	root := repoRoot(t)
	for _, rel := range readmes {
		blocks := goBlocks(t, root, rel)
		if len(blocks) == 0 {
			t.Errorf("%s has no ```go block: this test would check nothing there", rel)
		}
		for _, b := range blocks {
			t.Run(fmt.Sprintf("%s:%d", rel, b.line), func(t *testing.T) {
				if formatted, err := format.Source([]byte(b.body)); err != nil {
					t.Fatalf("not Go: %v\n%s", err, b.body)
				} else if string(formatted) != b.body {
					t.Errorf("not gofmt'ed; gofmt makes it:\n%s", formatted)
				}
				events := captured.FindAllStringSubmatch(b.body, -1)
				if len(events) == 0 {
					t.Fatal("the block captures no event, so running it proves nothing")
				}
				dir := t.TempDir()
				writeModule(t, dir, "example.com/readme", b.body)
				if out, err := goCommand(t, dir, nil, "build", "-tags", "telemetry_ffi_debug", "-o", "readme", "."); err != nil {
					t.Fatalf("go build: %v\n%s", err, out)
				}
				env := []string{"HOME=" + t.TempDir(), "TELEMETRY_DEBUG=1"}
				spans := spanNames.FindAllStringSubmatch(b.body, -1)
				var rx *receiver
				if len(spans) > 0 {
					// A block that traces exports to the real OTLP receiver, configured by
					// the standard variable as an operator would.
					rx = startReceiver(t)
					env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+rx.httpEndpoint())
				}
				_, stderr := runProgram(t, filepath.Join(dir, "readme"), env...)
				if rx != nil {
					got := map[string]bool{}
					for _, s := range rx.waitSpans(t, len(spans), 5*time.Second) {
						got[s.Name] = true
					}
					for _, s := range spans {
						if !got[s[1]] {
							t.Errorf("the block's span %q did not reach the receiver; it has %v", s[1], got)
						}
					}
				}
				if !strings.Contains(stderr, "[telemetry debug] would send:") {
					t.Fatalf("no debug payload on stderr:\n%s", stderr)
				}
				for _, e := range events {
					if !strings.Contains(stderr, fmt.Sprintf("%q: %q", "event", e[1])) {
						t.Errorf("the payload does not carry the event %q:\n%s", e[1], stderr)
					}
				}
				// A block that reports an error must have sent its report.
				if reports.MatchString(b.body) && !strings.Contains(stderr, `"event": "$exception"`) {
					t.Errorf("the block reports an error, but no $exception payload was printed:\n%s", stderr)
				}
			})
		}
	}
}
