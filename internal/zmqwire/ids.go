package zmqwire

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/goslo/goslo/envelope"
)

// NewUUID4 is str(uuid.uuid4()): socket identities and notification ids.
func NewUUID4() string { return envelope.NewUUID4().String() }

var uuid1 struct {
	sync.Mutex
	last  uint64
	seq   uint16
	node  [6]byte
	ready bool
}

// NewUUID1 is str(uuid.uuid1()): the message id of every request. The node
// is a random multicast address (what Python uses without a readable MAC).
func NewUUID1() string {
	uuid1.Lock()
	if !uuid1.ready {
		_, _ = rand.Read(uuid1.node[:])
		uuid1.node[0] |= 0x01
		var s [2]byte
		_, _ = rand.Read(s[:])
		uuid1.seq = binary.BigEndian.Uint16(s[:]) & 0x3fff
		uuid1.ready = true
	}
	// 100-ns intervals since 1582-10-15, strictly increasing.
	ts := uint64(time.Now().UnixNano()/100) + 0x01b21dd213814000
	if ts <= uuid1.last {
		ts = uuid1.last + 1
	}
	uuid1.last = ts
	seq, node := uuid1.seq, uuid1.node
	uuid1.Unlock()
	var u envelope.UUID
	binary.BigEndian.PutUint32(u[0:], uint32(ts))
	binary.BigEndian.PutUint16(u[4:], uint16(ts>>32))
	binary.BigEndian.PutUint16(u[6:], uint16(ts>>48)&0x0fff|0x1000)
	binary.BigEndian.PutUint16(u[8:], seq|0x8000)
	copy(u[10:], node[:])
	return u.String()
}
