package bench

import (
	"bytes"
	"os"
	"os/exec"
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
