package bench

import (
	"bytes"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestColdCopy: the worker processes run from a copy of the executable,
// byte for byte, that runs and is removed afterwards; what cannot be
// copied is run as it is.
func TestColdCopy(t *testing.T) {
	src, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) to copy")
	}
	exe, cleanup := coldCopy("true")
	if exe == "true" || exe == src {
		t.Fatalf("coldCopy returned %q, want a copy", exe)
	}
	want, _ := os.ReadFile(src)
	got, err := os.ReadFile(exe)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the copy differs from %s (%v)", src, err)
	}
	if err := exec.Command(exe).Run(); err != nil {
		t.Fatalf("the copy does not run: %v", err)
	}
	cleanup()
	if _, err := os.Stat(exe); !os.IsNotExist(err) {
		t.Errorf("the copy is still there after cleanup (%v)", err)
	}
	if p, cleanup := coldCopy("no-such-executable-anywhere"); p != "no-such-executable-anywhere" {
		t.Errorf("coldCopy of a missing executable returned %q", p)
	} else {
		cleanup()
	}
}

// TestLinkage: the RSS rows name a cgo build as dynamically linked and a
// CGO_ENABLED=0 one as static, read from the executable itself; this test's
// own binary (which links net, so cgo when it is enabled) is either, as
// its build settings say.
func TestLinkage(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bi, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	cgo := false
	for _, s := range bi.Settings {
		if s.Key == "CGO_ENABLED" {
			cgo = s.Value == "1"
		}
	}
	want := "statically linked"
	if cgo {
		want = "dynamically linked"
	}
	if got := linkage(exe); !strings.Contains(got, want) {
		t.Errorf("linkage of this test binary (CGO_ENABLED %v): %q, want it to say %q", cgo, got, want)
	}
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := linkage(notELF); !strings.Contains(got, "unknown") {
		t.Errorf("linkage of a script: %q, want unknown", got)
	}
}
