// Package fleettest holds the fleet's process-level acceptance tests
// (issue 11): the deskgated and deskgate binaries built once, three
// daemons as separate processes against one OfficeRnD simulator, joined
// with the CLI as an operator would; partitions cut with iptables between
// network namespaces, kill -9 restarts, and a randomized test in the style
// of Jepsen. It has no non-test code. The namespace tests need root and
// skip without it (or fail when CI=true).
package fleettest
