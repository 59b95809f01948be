//go:build !unix

package devcluster

// lockFile is a no-op where flock is unavailable: concurrent builds then race, which the go command tolerates
// except for the final rename of the output.
func lockFile(string) (unlock func(), err error) { return func() {}, nil }
