//go:build cgo

package telemetry

// The module `make go-module` produces, used as an integrator gets it: a program outside
// the repository requires it (a replace directive to the produced tree, standing for the
// proxy's copy), and go builds it with no cargo, rustc or checkout in sight: PATH holds
// only go, cc (with as and ld) and a few coreutils. The binary delivers to the real collector; go mod
// vendor keeps the prebuilt library; CGO_ENABLED=0 and a platform the module carries no
// library for build and run with telemetry off, saying why.
//
// TELEMETRY_GO_MODULE names the produced tree (make test-go makes one from the debug
// build: make go-module GO_MODULE_PROFILE=dev).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// prebuiltModule returns the produced tree, after checking it is one: outside the
// repository's sources, with this platform's library and no link file of the checkout.
func prebuiltModule(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TELEMETRY_GO_MODULE")
	if dir == "" {
		t.Fatal("TELEMETRY_GO_MODULE is not set: run through `make test-go`, or `make go-module GO_MODULE_PROFILE=dev` and point it at target/go-module/dev")
	}
	lib := filepath.Join(dir, "telemetry", "lib", runtime.GOOS+"_"+runtime.GOARCH, "libtelemetry_ffi.a")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("the produced module has no library for this platform: %v", err)
	}
	for _, f := range []string{"link_release.go", "link_debug.go", "client_test.go"} {
		if _, err := os.Stat(filepath.Join(dir, "telemetry", f)); err == nil {
			t.Errorf("the produced module carries the checkout's %s", f)
		}
	}
	return dir
}

// toolsOnly makes a directory of symlinks to go, the C toolchain (cc and the assembler
// and linker it runs) and a few coreutils, to serve as the whole PATH.
func toolsOnly(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	for _, tool := range []string{"go", "cc", "as", "ld", "cat", "cp", "ls", "mkdir", "mv", "rm", "env", "uname"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for _, absent := range []string{"cargo", "rustc", "rustup", "gcc"} {
		if _, err := os.Stat(filepath.Join(bin, absent)); err == nil {
			t.Fatalf("%s is on the stripped PATH", absent)
		}
	}
	return bin
}

// isolatedGo runs the go command with PATH=bin and the user's caches only; CC=cc because
// cgo's default compiler name, gcc, is not on that PATH.
func isolatedGo(t *testing.T, dir, bin string, extra []string, args ...string) ([]byte, error) {
	t.Helper()
	vars := map[string]string{}
	for _, k := range []string{"GOROOT", "GOPATH", "GOMODCACHE", "GOCACHE"} {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		vars[k] = strings.TrimSpace(string(out))
	}
	env := []string{"PATH=" + bin, "HOME=" + os.Getenv("HOME"), "CC=cc", "CGO_ENABLED=1",
		"GOFLAGS=", "GOWORK=off", "GOPROXY=off", "GOTOOLCHAIN=local", "GOTMPDIR=" + t.TempDir()}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "go"), args...)
	cmd.Dir = dir
	cmd.Env = append(env, extra...)
	return cmd.CombinedOutput()
}

func TestPrebuiltModuleBuildsWithoutRustAndDelivers(t *testing.T) {
	root := repoRoot(t)
	produced := prebuiltModule(t)
	program, _ := integratorSteps(t, root) // the README's first program
	dir := t.TempDir()
	if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
		t.Fatalf("%s is inside the repository", dir)
	}
	gomod := fmt.Sprintf("module example.com/myapp\n\ngo 1.24\n\nrequire %s v0.0.0\n\nreplace %s => %s\n",
		modulePath, modulePath, produced)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	seedGoSum(t, produced, dir)
	bin := toolsOnly(t)
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", "myapp", "."}} {
		if out, err := isolatedGo(t, dir, bin, nil, args...); err != nil {
			t.Fatalf("go %s with PATH=go,cc,coreutils: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	url := startCollector(t)
	if p := runReadmeProgram(t, filepath.Join(dir, "myapp"), url); p["product"] != "myapp" || p["runtime"] != "go" || p["mode"] != "server" {
		t.Errorf("stored properties %v", p)
	}

	t.Run("vendor", func(t *testing.T) {
		// The lib directory is a package vendor_libs.go imports under a tag no build sets,
		// so go mod vendor copies it, as wasmtime-go's layout does.
		if out, err := isolatedGo(t, dir, bin, nil, "mod", "vendor"); err != nil {
			t.Fatalf("go mod vendor: %v\n%s", err, out)
		}
		t.Cleanup(func() { _ = os.RemoveAll(filepath.Join(dir, "vendor")) })
		vendored := filepath.Join(dir, "vendor", filepath.FromSlash(modulePath), "telemetry", "lib",
			runtime.GOOS+"_"+runtime.GOARCH, "libtelemetry_ffi.a")
		if _, err := os.Stat(vendored); err != nil {
			t.Fatalf("vendor/ lacks the library: %v", err)
		}
		if out, err := isolatedGo(t, dir, bin, nil, "build", "-mod=vendor", "-o", "myapp-vendored", "."); err != nil {
			t.Fatalf("go build -mod=vendor: %v\n%s", err, out)
		}
	})

	t.Run("CGO_ENABLED=0", func(t *testing.T) {
		if out, err := isolatedGo(t, dir, bin, []string{"CGO_ENABLED=0"}, "build", "-o", "myapp-nocgo", "."); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		_, stderr := runProgram(t, filepath.Join(dir, "myapp-nocgo"), "HOME="+t.TempDir(), "MYAPP_TELEMETRY_ENDPOINT="+url)
		if !strings.Contains(stderr, "this program was built without cgo (CGO_ENABLED=0), so telemetry-core's library is not linked: telemetry is off") {
			t.Errorf("the decision does not say why:\n%s", stderr)
		}
	})

	t.Run("a platform without a library", func(t *testing.T) {
		// linux/386 runs here and has no library in the module: with cgo still on, the
		// package builds off. netgo and osusergo keep the standard library from needing a
		// 32-bit C compiler.
		if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
			t.Skip("runs a linux/386 binary on linux/amd64")
		}
		if _, err := os.Stat(filepath.Join(produced, "telemetry", "lib", "linux_386")); err == nil {
			t.Skip("the module carries a linux/386 library")
		}
		out, err := isolatedGo(t, dir, bin, []string{"GOARCH=386"}, "list", "-f", "{{.GoFiles}} {{.CgoFiles}}", modulePath+"/telemetry")
		if err != nil || !strings.Contains(string(out), "ffi_off.go") || strings.Contains(string(out), "ffi.go ") {
			t.Fatalf("go list for linux/386: %v\n%s", err, out)
		}
		if out, err := isolatedGo(t, dir, bin, []string{"GOARCH=386"}, "build", "-tags", "netgo,osusergo", "-o", "myapp-386", "."); err != nil {
			t.Fatalf("go build for linux/386: %v\n%s", err, out)
		}
		cmd := exec.Command(filepath.Join(dir, "myapp-386"))
		cmd.Env = []string{"HOME=" + t.TempDir(), "MYAPP_TELEMETRY_ENDPOINT=" + url}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Skipf("this kernel does not run linux/386 binaries: %v\n%s", err, &stderr)
		}
		if !strings.Contains(stderr.String(), "this module carries no telemetry-core library for linux/386, so it is not linked: telemetry is off") {
			t.Errorf("the decision does not say why:\n%s", &stderr)
		}
	})

	var rows []storedEvent
	getJSON(t, url+"/api/events?event=app_started", &rows)
	if len(rows) != 1 {
		t.Errorf("the off builds delivered: %d app_started events stored, want the first program's 1", len(rows))
	}
}
