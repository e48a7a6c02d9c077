//go:build cgo

package telemetry

// An integrator's module, made the way bindings/go/README.md ("Depending on it from your
// module") says, in a temporary directory outside the repository: its shell block's go
// commands run as written (the checkout's path put in for /path/to/telemetry-core, and
// -tags telemetry_ffi_debug added to go build to link the debug library `make build`
// made), its first program is main.go, and the binary delivers to the real collector.
// What the README says is unsupported fails the way it says.

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

const integratorSection = "## Depending on it from your module"

// checkoutPlaceholder stands for the checkout's path in the README.
const checkoutPlaceholder = "/path/to/telemetry-core"

// integratorSteps returns the README's program (its first ```go block) and the commands
// of the first ```sh block of its integrator section, one slice of words per command.
func integratorSteps(t *testing.T, root string) (program string, commands [][]string) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, "bindings/go/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(t, root, "bindings/go/README.md")
	if len(blocks) == 0 {
		t.Fatal("bindings/go/README.md has no program")
	}
	program = blocks[0].body
	_, section, found := strings.Cut(string(text), "\n"+integratorSection+"\n")
	if !found {
		t.Fatalf("bindings/go/README.md has no %q section", integratorSection)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, b := range fencedBlocks(section) {
		if b.lang != "sh" {
			continue
		}
		for _, line := range strings.Split(b.body, "\n") {
			line, _, _ = strings.Cut(line, "#")
			if words := strings.Fields(line); len(words) > 0 {
				commands = append(commands, words)
			}
		}
		break
	}
	if len(commands) == 0 {
		t.Fatalf("the %q section has no sh block", integratorSection)
	}
	return program, commands
}

// integratorModule makes the module in a new directory outside the repository, running
// the README's commands up to (without) go build; it returns the directory, the module
// path and the go build command.
func integratorModule(t *testing.T, root string) (dir, module string, build []string) {
	t.Helper()
	program, commands := integratorSteps(t, root)
	dir = t.TempDir()
	if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
		t.Fatalf("%s is inside the repository", dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, words := range commands {
		for i, w := range words {
			words[i] = strings.ReplaceAll(w, checkoutPlaceholder, root)
		}
		switch {
		case words[0] == "cargo":
			// `make build` made the debug library this test links; the README's release build
			// would take minutes and is not what -tags telemetry_ffi_debug links.
			if !strings.Contains(strings.Join(words, " "), "-p telemetry-ffi") {
				t.Fatalf("the README builds something else than telemetry-ffi: %v", words)
			}
			if _, err := os.Stat(filepath.Join(root, "target", "debug", "libtelemetry_ffi.a")); err != nil {
				t.Fatalf("the debug library: %v (run `make build`)", err)
			}
		case words[0] == "go" && len(words) > 1 && words[1] == "build":
			build = append([]string{"build", "-tags", "telemetry_ffi_debug"}, words[2:]...)
		case words[0] == "go":
			if words[1] == "mod" && len(words) > 3 && words[2] == "init" {
				module = words[3]
			}
			if words[1] == "mod" && len(words) > 2 && words[2] == "tidy" {
				seedGoSum(t, filepath.Join(root, "bindings", "go"), dir)
			}
			if out, err := goCommand(t, dir, nil, words[1:]...); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(words, " "), err, out)
			}
		default:
			t.Fatalf("the README asks for a command this test does not know: %v", words)
		}
	}
	if module == "" || build == nil {
		t.Fatalf("the README's commands neither init a module nor build it: %v", commands)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	replace := fmt.Sprintf("replace %s => %s", modulePath, filepath.Join(root, "bindings", "go"))
	if !strings.Contains(string(gomod), "require "+modulePath+" v0.0.0") || !strings.Contains(string(gomod), replace) {
		t.Fatalf("go.mod lacks the require and replace lines the README shows:\n%s", gomod)
	}
	return dir, module, build
}

func TestModuleOutsideTheRepositoryBuildsAsTheReadmeSaysAndDelivers(t *testing.T) {
	root := repoRoot(t)
	dir, module, build := integratorModule(t, root)
	if out, err := goCommand(t, dir, nil, build...); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(build, " "), err, out)
	}
	p := runReadmeProgram(t, filepath.Join(dir, path.Base(module)), startCollector(t))
	if p["product"] != "myapp" || p["runtime"] != "go" || p["mode"] != "server" || p["collections"] != 3.0 {
		t.Errorf("stored properties %v", p)
	}
	if h, _ := p["dataset"].(string); len(h) != 16 || h == "customers" {
		t.Errorf("an undeclared string was stored in clear: %v", p["dataset"])
	}
}

// TestModuleWithoutCgoRunsOffAndVendorFailsAsTheReadmeSays: with CGO_ENABLED=0 the
// integrator's program builds and runs with telemetry off, its decision saying why (the
// fallback of ffi_off.go); go mod vendor of the checkout fails with the error the README
// quotes, which says what to do instead.
func TestModuleWithoutCgoRunsOffAndVendorFailsAsTheReadmeSays(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "bindings/go/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir, module, build := integratorModule(t, root)

	const noCgo = "this program was built without cgo (CGO_ENABLED=0), so telemetry-core's library is not linked: telemetry is off"
	if out, err := goCommand(t, dir, []string{"CGO_ENABLED=0"}, build...); err != nil {
		t.Fatalf("the module does not build with CGO_ENABLED=0: %v\n%s", err, out)
	}
	// Pointed at a collector that is not there: off, it never tries.
	_, stderr := runProgram(t, filepath.Join(dir, path.Base(module)),
		"HOME="+t.TempDir(), "MYAPP_TELEMETRY_ENDPOINT=http://127.0.0.1:9")
	if !strings.Contains(stderr, noCgo) {
		t.Errorf("built with CGO_ENABLED=0, the program's decision does not say why:\n%s", stderr)
	}

	const noHeader = `#error "telemetry.h not found: build this package from a telemetry-core checkout through a replace directive, or use the released module`
	if out, err := goCommand(t, dir, nil, "mod", "vendor"); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	out, err := goCommand(t, dir, nil, build...)
	if err == nil {
		t.Fatal("the module built from vendor/")
	}
	if !strings.Contains(string(out), noHeader) {
		t.Errorf("building from vendor/ does not say why:\n%s", out)
	}

	for _, quoted := range []string{noCgo, strings.TrimPrefix(noHeader, "#error \"")} {
		if !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), quoted) {
			t.Errorf("bindings/go/README.md does not quote %q", quoted)
		}
	}
}
