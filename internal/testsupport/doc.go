// Package testsupport holds the helpers that the tests of several cioq
// packages share, so each is written once: waiting for a condition
// (Eventually), a logger that stays quiet unless asked (Logger), and the
// customerio.Config that points a client at a sandbox (SandboxConfig).
//
// Test Redis databases live next door, in internal/testredis. Only test
// code imports this package; it imports customerio and its sandbox, which
// the layers table allows internal packages for test support.
package testsupport
