// Package interop runs goslo against the real Python oslo.messaging.
//
// The tests start testdata/python/peer.py under the tox environments that
// `make deps` builds (zmq814: oslo.messaging 8.1.4 with its three Python 3.11
// shims; modern: the newest oslo.messaging on the package index) and drive it
// over stdin/stdout JSON lines. Values that JSON cannot carry cross in the
// tagged form of tagged.go / tagged.py.
//
// A missing environment fails the tests loudly. GOSLO_SKIP_INTEROP=1 skips
// them in a quick local loop, and is ignored when CI is set.
package interop
