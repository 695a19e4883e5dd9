"""`fraudapp bench`: fraudapp's speed measured against peer implementations (bench/).

traffic.py  deterministic click traffic (the same bytes for every system)
procs.py    subprocesses of the systems under test, CPU/RSS sampling with psutil
kafkaio.py  producing the backlog / paced traffic, measuring outputs
harness.py  the run: throughput, latency at fixed rates, ratios, JSON and markdown
"""
