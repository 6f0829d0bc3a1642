package envelope

import (
	"crypto/rand"
	"encoding/hex"
)

// NewUUID4 returns a random UUID, as uuid.uuid4(): String gives str(u)
// (notification message ids, socket identities), Hex gives u.hex.
func NewUUID4() UUID {
	var u UUID
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// Hex is Python's UUID.hex: 32 lower-case hex digits.
func (u UUID) Hex() string { return hex.EncodeToString(u[:]) }
