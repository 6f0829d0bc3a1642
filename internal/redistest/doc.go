// Package redistest starts real redis-server and redis-sentinel processes
// on free loopback ports for tests, and stops them (by pid) when the test
// ends. A missing binary fails the test loudly: `make deps` installs it.
package redistest
