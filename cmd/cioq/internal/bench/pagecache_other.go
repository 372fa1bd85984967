//go:build !linux

package bench

// dropPageCache does nothing where the kernel has no posix_fadvise (the
// process measurements read /proc, Linux's, anyway).
func dropPageCache(string) {}

// coldCopy returns path as it is.
func coldCopy(path string) (string, func()) { return path, func() {} }
