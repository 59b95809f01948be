// Package testrand makes the random identifiers that test servers and fakes hand out: hex strings (keys, IDs,
// tokens) and UUIDs (tenants, request IDs).
package testrand

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/google/uuid"
)

// Hex is n random bytes in hexadecimal (2n characters).
func Hex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// UUID is a random (version 4) UUID in its canonical form.
func UUID() string { return uuid.NewString() }
