#!/bin/sh
# make fuzz: runs every Go fuzz target for FUZZTIME (default 20s) each.
# Failing inputs land in the package's testdata/fuzz/ and fail `make test`
# from then on, as Go's fuzzing does.
set -eu
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-20s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	dir=$(dirname "$f")
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "== $dir $target ($FUZZTIME)"
		go test "$dir" -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 200x
	done
done
