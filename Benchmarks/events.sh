#!/usr/bin/env bash
# Event-API benchmark: breakpoint events per second for an INT3 in a tight loop (the
# tight_loop guest, 100000 hits), the Swift handler reading the registers once per event,
# against a bare C loop doing the same on the same guest (Benchmarks/c/kvm_events.c), run
# alternately in one invocation; medians, start-up excluded, both sums of RCX compared.
#
#   Benchmarks/events.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
toolchain_bin=$(dirname "$(readlink -f "$(command -v swift)")")
work=.build/bench
mkdir -p "$work"
swift build -c release --product hyperstep-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
"$toolchain_bin/clang" -O2 -Wno-gnu-variable-sized-type-not-at-end -o "$work/kvm_events" Benchmarks/c/kvm_events.c
"$bin/hyperstep-bench" write-flat tight_loop "$work/tight_loop.flat"
"$bin/hyperstep-bench" write-guest tight_loop "$work/tight_loop.elf"
loop=$("$toolchain_bin/llvm-nm" "$work/tight_loop.elf" | awk '$3 == "loop" { print "0x" $1 }')

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { awk -v e="$1" -v n="$2" 'BEGIN { printf "%d", e / (n / 1e9) }'; }
c_rates=() h_rates=() sums=""
for ((round = 0; round < rounds; round++)); do
  read -r events ns sum < <("$work/kvm_events" "$work/tight_loop.flat" 0x100000 "$loop")
  c_rates+=("$(rate "$events" "$ns")")
  sums="$sums c:$events/$sum"
  read -r events ns sum < <("$bin/hyperstep-bench" events)
  h_rates+=("$(rate "$events" "$ns")")
  sums="$sums h:$events/$sum"
done
c_rate=$(printf '%s\n' "${c_rates[@]}" | median)
h_rate=$(printf '%s\n' "${h_rates[@]}" | median)
echo "event benchmark: INT3 at tight_loop's loop ($loop), $rounds alternating rounds, medians"
echo "  bare C breakpoint loop (GET_REGS, step over, replant)   $c_rate events/s"
echo "  IntrospectionSession, handler reads registers          $h_rate events/s   ($(awk -v h="$h_rate" -v c="$c_rate" 'BEGIN { printf "%.1f", 100 * h / c }')% of the C loop)"
echo "  events/sum of RCX per run:$sums"
