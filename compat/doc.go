// Package compat holds oslo.messaging's semantics that need no I/O: the
// Target and every wire string derived from it (routing keys, listener keys,
// subscribe filters, notification topics, proxy-mode identities, matchmaker
// records), version compatibility, the transport URL, and the oslo.config
// options of the zmq driver with their INI loading and URL overrides.
//
// It also holds the options of the rabbit driver of oslo.messaging 18.3.1
// ([oslo_messaging_rabbit], [oslo_messaging_notifications];
// rabbit_options.go, Config.ValidateRabbit, Config.ApplyRabbitURLQuery) and
// the reading of its transport URL (rabbit_url.go), described in the
// repository's spec file rabbit-wire.md §2.1 and §3.
//
// Each function here mirrors one function of oslo.messaging 8.1.4 (named in
// its comment) and is checked against the real Python code by the interop
// suite. Nothing else in goslo builds these strings by hand.
//
// compat imports nothing else from goslo.
package compat
