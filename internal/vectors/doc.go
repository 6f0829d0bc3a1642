// Package vectors loads the golden captures of the real Python drivers for
// tests and fuzz seeds: shared/vectors/zmq and shared/vectors/rabbit, found
// in the nearest directory above the repository that has them (beside the
// main checkout, or above a worktree); GOSLO_VECTORS and
// GOSLO_RABBIT_VECTORS override the two directories.
//
// A zmq vector file (Load, Files) is one scenario recorded from the live
// traffic of oslo.messaging 8.1.4: its config and inputs, and every
// multipart message captured on the wire as a Vector, each Frame in hex,
// with the harness's reading of it (Decoded: layout, message type and id,
// the role of each frame, the decoded context and message). FrameBytes
// gives a vector's frames as the receiving socket got them, Payload its
// payload frame; Payloads collects every payload frame of every file, the
// inputs of the codec's vector tests and the seeds of its fuzzers. A rabbit
// vector file (LoadRabbit) is returned as raw JSON, since the order of its
// tables and keys is part of what it pins: callers decode it with
// envelope.DecodeJSON.
//
// The loaders take a testing.TB and fail the test loudly when the vectors
// are missing: a test that compares nothing must not pass.
package vectors
