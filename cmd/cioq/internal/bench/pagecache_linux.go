package bench

import (
	"io"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// coldCopy copies the executable that path names (as exec finds it) to a
// temporary file, synced (so that dropPageCache, before each run, can drop
// all of it), and returns its path and how to remove it: the measured
// worker processes start from a file no other process maps (the bench itself runs the cioq executable,
// whose pages it has touched through every section, and the kernel maps
// cached pages around each one a process faults in). On any error it
// returns path unchanged.
func coldCopy(path string) (string, func()) {
	src, err := exec.LookPath(path)
	if err != nil {
		return path, func() {}
	}
	in, err := os.Open(src)
	if err != nil {
		return path, func() {}
	}
	defer in.Close()
	out, err := os.CreateTemp("", "cioq-bench-worker-*")
	if err != nil {
		return path, func() {}
	}
	remove := func() { os.Remove(out.Name()) }
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if err == nil {
		err = out.Chmod(0o755)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A temporary directory mounted noexec cannot run it.
		probe := exec.Command(out.Name(), "version")
		if err = probe.Start(); err == nil {
			probe.Wait()
		}
	}
	if err != nil {
		remove()
		return path, func() {}
	}
	return out.Name(), remove
}

// dropPageCache asks the kernel to drop the cached pages of the file at
// path that no process maps, so that a process started from it reads its
// executable as from a cold start (a container starting it), not in
// whatever folios earlier runs and reads of the file left in the page
// cache: the resident file pages of the same build otherwise vary by 1-4
// MiB with the file's history. Best effort: an error changes nothing.
func dropPageCache(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
