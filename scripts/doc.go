// Package scripts holds the shell scripts behind the Makefile (demo, test
// dependencies, benchmarks, fuzzing); its Go tests run the demo script as
// an operator would.
package scripts
