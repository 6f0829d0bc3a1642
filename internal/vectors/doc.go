// Package vectors loads the golden captures of the real Python driver
// (../shared/vectors/zmq beside the repository) for tests and fuzz seeds.
package vectors
