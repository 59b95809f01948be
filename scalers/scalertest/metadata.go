package scalertest

// Delete, as a value in With or WithPairs, removes the key instead of setting it.
const Delete = "<delete>"

// With returns a copy of base with changes applied, for metadata table tests: each key is set to its value, or
// removed when the value is Delete. base is not modified.
func With(base, changes map[string]string) map[string]string { return Merge(base, changes) }

// Merge returns a new map with ms applied left to right: each key is set to its value, or removed when the value
// is Delete. No argument is modified.
func Merge(ms ...map[string]string) map[string]string {
	n := 0
	for _, m := range ms {
		n += len(m)
	}
	out := make(map[string]string, n)
	for _, m := range ms {
		for k, v := range m {
			if v == Delete {
				delete(out, k)
				continue
			}
			out[k] = v
		}
	}
	return out
}

// WithPairs is With for changes given as key, value pairs; a trailing key without a value is ignored.
func WithPairs(base map[string]string, kv ...string) map[string]string {
	changes := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		changes[kv[i]] = kv[i+1]
	}
	return With(base, changes)
}
