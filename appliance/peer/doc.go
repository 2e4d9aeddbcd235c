// Package peer makes the boxes of one space a fleet: identity (a fleet
// CA, single-use join tokens, box certificates, removals), the channel
// (mutual TLS 1.3 websockets, one link per pair, ping/pong liveness,
// bounded queues, reconnect with backoff and jitter) and replication (a
// per-origin log with hybrid logical clocks in the store, version vectors
// exchanged on connect, anti-entropy then live streaming, deterministic
// merges per record kind). docs/fleet.md is the design.
//
// It imports store, model and creds; only the composition root
// (appliance) imports it.
package peer
