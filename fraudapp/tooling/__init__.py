"""What the `fraudapp` command brings besides the worker: the local Kafka broker from
Maven Central jars (`localkafka`, `localtls`), the traffic simulator and its evaluation
(`simulation`, `evaluation`), the benchmark (`benchmark`) and process helpers. The worker
never imports any of it (a layer contract in setup.cfg)."""
