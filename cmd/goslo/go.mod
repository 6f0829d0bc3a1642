// The goslo command, a module of its own so that the core module
// (github.com/goslo/goslo) does not require what only the command needs:
// Prometheus, through github.com/goslo/goslo/extra/gosloprom, for
// --metrics-addr. The replaces point at this repository; the go.work at its
// root does the same for development.
module github.com/goslo/goslo/cmd/goslo

go 1.26.0

require (
	github.com/goslo/goslo v0.0.0-00010101000000-000000000000
	github.com/goslo/goslo/extra/gosloprom v0.0.0-00010101000000-000000000000
	github.com/prometheus/client_golang v1.25.0
	github.com/rabbitmq/amqp091-go v1.17.0
	github.com/stretchr/testify v1.12.1
	go.yaml.in/yaml/v3 v3.0.5
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/pebbe/zmq4 v1.4.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/goslo/goslo => ../..
	github.com/goslo/goslo/extra/gosloprom => ../../extra/gosloprom
)
