// Package rabbittest starts private, real rabbitmq-server nodes for tests:
// each with its own node name, loopback AMQP port, Erlang distribution
// port, epmd (on its own port, bound to 127.0.0.1), Erlang cookie and
// data/log/config directories under t.TempDir(). The system service, port
// 5672 and epmd's 4369 are never used. Every process is stopped by pid
// when the test ends and the package checks that none is left.
//
// A missing rabbitmq-server fails the test loudly: `make deps` installs it.
package rabbittest
