"""The operator process: leader election, shards, health and metrics around the controllers."""
