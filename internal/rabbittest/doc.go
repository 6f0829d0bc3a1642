// Package rabbittest starts private, real rabbitmq-server nodes for tests:
// each with its own node name, loopback AMQP port, Erlang distribution
// port, epmd (on its own port, bound to 127.0.0.1), Erlang cookie and
// data/log/config directories under t.TempDir(). The system service, port
// 5672 and epmd's 4369 are never used. Every process is stopped by pid
// when the test ends and the package checks that none is left.
//
// Start boots one Node (options: WithTLS, WithPlugins, WithConfig); its
// URL and AMQPURL methods name it for goslo and for amqp091-go, and it can
// be stopped, killed and restarted in place for failover tests. Ctl runs
// rabbitmqctl against it, and ListQueues, ListExchanges, ListBindings and
// ListConsumers return the topology as rabbitmqctl reports it, to compare
// with the reference's captures. StartCluster joins several nodes into
// one cluster. Only tests import this package.
//
// A missing rabbitmq-server fails the test loudly: `make deps` installs it.
package rabbittest
