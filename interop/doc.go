// Package interop runs goslo against the real Python oslo.messaging.
//
// The tests start testdata/python/peer.py under the tox environments that
// `make deps` builds (zmq814: oslo.messaging 8.1.4 with its three Python 3.11
// shims; modern: the newest oslo.messaging on the package index) and drive it
// over stdin/stdout JSON lines. Values that JSON cannot carry cross in the
// tagged form of tagged.go / tagged.py.
//
// The TestRabbit* tests run Go against oslo.messaging 18.3.1 on the rabbit
// driver (tox environment rabbit1831, testdata/python/rabbit_peer.py) in
// both directions, on one private rabbitmq-server node per test binary
// (internal/rabbittest; started by the first rabbit test, stopped in
// TestMain), one vhost per test. What a Python peer does with a Go message
// is the verdict; the firehose (amq.rabbitmq.trace) shows what each side
// put on the wire.
//
// A missing environment fails the tests loudly. GOSLO_SKIP_INTEROP=1 skips
// them in a quick local loop, and is ignored when CI is set.
package interop
