// Package config owns deskgate's configuration file: its Go types, loading
// (YAML with line-precise errors, durations like "7d", bandwidth strings),
// defaults, secret resolution (file or environment, never logged) and
// validation that names the key, the file:line and a fix for every mistake.
//
// It is pure apart from reading the config and secret files and the
// environment, runs on any OS, and imports no other deskgate package.
package config
