//go:build !unix

package controlplane

// lockDataDir is a no-op where flock is unavailable.
func lockDataDir(string) (unlock func(), err error) { return func() {}, nil }
