// Package redistest starts real redis-server and redis-sentinel processes
// on free loopback ports for tests, and stops them (by pid) when the test
// ends. A missing binary fails the test loudly: `make deps` installs it.
//
// Start (StartBind for another loopback address, IPv6 included) runs a
// redis-server and StartSentinel a redis-sentinel watching it; a Server
// can be killed and restarted on its port for the matchmaker's failover
// tests. StartMonitor records a server's MONITOR stream, so that a test
// can compare goslo's Redis commands, one by one, with those the Python
// matchmaker sends (ParseMonitorLine reads one line; EncodeCommand builds
// a raw RESP command). Only tests import this package.
package redistest
