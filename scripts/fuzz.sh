#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default 1m),
# going on after a target fails, then prints a summary: package, target,
# time, executions, new interesting inputs and the crasher, if any. Exits 1
# when any target failed (a crasher is kept under the package's
# testdata/fuzz/<target>/ and runs with the tests from then on).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-1m}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rows=()
failed=()
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $target for $t"
    start=$SECONDS
    status=ok
    if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$t" 2>&1 | tee "$log"; then
      status=FAIL
    fi
    # The last progress line: "fuzz: elapsed: 1m0s, execs: 123 (2/sec), new interesting: 4 (total: 9)".
    last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1 || true)
    execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
    newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
    crash=-
    if [[ $status == FAIL ]]; then
      crash=$(sed -nE 's/.*Failing input written to ([^ ]+).*/\1/p' "$log" | tail -n 1)
      if [[ -z $crash ]]; then # a seed or a kept crasher failed before fuzzing
        crash=$(sed -nE "s#.*--- FAIL: ${target}/([^ ]+).*#testdata/fuzz/${target}/\\1#p" "$log" | head -n 1)
      fi
      crash=${crash:-"$target (see its output above)"}
      failed+=("$pkg $target")
    fi
    rows+=("$(printf '%s\t%s\t%ss\t%s\t%s\t%s' "${pkg#flowwatch/}" "$target" "$((SECONDS - start))" "${execs:--}" "${newi:--}" "$crash")")
  done
done

echo
{
  printf 'PACKAGE\tTARGET\tTIME\tEXECS\tNEW INTERESTING\tCRASH\n'
  printf '%s\n' "${rows[@]}"
} | awk -F'\t' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; nf = NF }
  END { for (r = 1; r <= n; r++) { line = ""; for (i = 1; i <= nf; i++) line = line sprintf(i < nf ? "%-" w[i] "s  " : "%s", cell[r, i]); print line } }'
if ((${#failed[@]} > 0)); then
  echo
  echo "fuzz: ${#failed[@]} target(s) failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
