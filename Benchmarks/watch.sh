#!/usr/bin/env bash
# Write watchpoints on KVM: a watched run served by write-protecting the watched page (the
# guest at full speed, stopping only for writes to that page) against the same watch served
# by stepping and comparing after every instruction, and against no watch at all. The
# tight-loop guest (300004 instructions) with an 8-byte watch on its own code, which it never
# writes, so no hit is expected (the driver fails otherwise). Alternating rounds in one
# invocation, medians of the session's run time (start-up excluded).
#
#   Benchmarks/watch.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
case "$rounds" in '' | *[!0-9]* | 0) echo "watch.sh: ROUNDS must be a whole number of at least 1" >&2; exit 2 ;; esac
swift build -c release --product hyperstep-bench >/dev/null
bench="$(swift build -c release --show-bin-path)/hyperstep-bench"
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
none=() protect=() step=()
for ((round = 0; round < rounds; round++)); do
  for mode in none protect step; do
    read -r hits ns _ < <("$bench" watch "$mode")
    [ "$hits" = 0 ] || { echo "watch.sh: the $mode run reported $hits watch hits; none expected" >&2; exit 1; }
    case "$mode" in none) none+=("$ns") ;; protect) protect+=("$ns") ;; step) step+=("$ns") ;; esac
  done
done
n=$(printf '%s\n' "${none[@]}" | median)
p=$(printf '%s\n' "${protect[@]}" | median)
s=$(printf '%s\n' "${step[@]}" | median)
echo "write watchpoints on KVM: tight_loop guest, 300004 instructions, $rounds alternating rounds, medians"
awk -v n="$n" -v p="$p" -v s="$s" 'BEGIN {
  printf "  no watch                               %10.3f ms\n", n / 1e6
  printf "  watch, page write-protected            %10.3f ms   (%.2fx the unwatched time)\n", p / 1e6, p / n
  printf "  watch, stepping and comparing          %10.3f ms   (%.2fx the unwatched time)\n", s / 1e6, s / n
  printf "  write-protected against stepping:      %.1fx faster\n", s / p
}'
