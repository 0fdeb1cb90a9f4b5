#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default 1m),
# going on after a target fails, then prints a summary: package, target,
# time, executions, new interesting inputs and the crasher, if any. Exits 1
# when any target failed (a crasher is kept under the package's
# testdata/fuzz/<target>/ and runs with the tests from then on).
#
# Targets run in FUZZJOBS lanes at once (default: one per CPU), each target
# with one fuzzing worker, so every target gets a core for its whole time and
# the run takes targets × time ÷ lanes. Each target's full output is kept in
# bin/fuzz/<package>.<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-1m}
jobs=${FUZZJOBS:-$(nproc)}
((jobs >= 1)) || jobs=1
logs=bin/fuzz
mkdir -p "$logs"
rowsdir=$(mktemp -d)
trap 'rm -rf "$rowsdir"' EXIT

targets=()
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    targets+=("$pkg $target")
  done
done
((${#targets[@]} > 0)) || { echo "fuzz: no fuzz targets found" >&2; exit 1; }
if ((jobs > ${#targets[@]})); then jobs=${#targets[@]}; fi
# Build every test binary once up front so the lanes do not race to compile.
go test -run '^$' ./... >/dev/null
echo "fuzz: ${#targets[@]} targets, $t each, $jobs at once, one worker each; logs in $logs/"

# fuzz_one PKG TARGET appends one tab-separated row to the lane's rows file.
fuzz_one() {
  local pkg=$1 target=$2 rows=$3
  local name=${pkg#flowwatch/}
  local log="$logs/${name//\//_}.$target.log"
  local start=$SECONDS status=ok
  echo "fuzz: start $pkg $target"
  if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -parallel 1 >"$log" 2>&1; then
    status=FAIL
  fi
  # The last progress line: "fuzz: elapsed: 1m0s, execs: 123 (2/sec), new interesting: 4 (total: 9)".
  local last execs newi crash=-
  last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1 || true)
  execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
  newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
  if [[ $status == FAIL ]]; then
    crash=$(sed -nE 's/.*Failing input written to ([^ ]+).*/\1/p' "$log" | tail -n 1)
    if [[ -z $crash ]]; then # a seed or a kept crasher failed before fuzzing
      crash=$(sed -nE "s#.*--- FAIL: ${target}/([^ ]+).*#testdata/fuzz/${target}/\\1#p" "$log" | head -n 1)
    fi
    crash=${crash:-"see $log"}
  fi
  echo "fuzz: done  $pkg $target: $status, ${execs:--} execs in $((SECONDS - start))s"
  printf '%s\t%s\t%ss\t%s\t%s\t%s\n' "${pkg#flowwatch/}" "$target" "$((SECONDS - start))" "${execs:--}" "${newi:--}" "$crash" >>"$rows"
}

for ((lane = 0; lane < jobs; lane++)); do
  (
    for ((i = lane; i < ${#targets[@]}; i += jobs)); do
      # shellcheck disable=SC2086
      fuzz_one ${targets[i]} "$rowsdir/$(printf '%03d' "$i")"
    done
  ) &
done
wait

echo
{
  printf 'PACKAGE\tTARGET\tTIME\tEXECS\tNEW INTERESTING\tCRASH\n'
  cat "$rowsdir"/*
} | awk -F'\t' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; nf = NF }
  END { for (r = 1; r <= n; r++) { line = ""; for (i = 1; i <= nf; i++) line = line sprintf(i < nf ? "%-" w[i] "s  " : "%s", cell[r, i]); print line } }'
failed=$(awk -F'\t' '$6 != "-" { print "  " $1 " " $2 }' "$rowsdir"/*)
if [[ -n $failed ]]; then
  echo
  echo "fuzz: $(wc -l <<<"$failed") target(s) failed:"
  echo "$failed"
  exit 1
fi
