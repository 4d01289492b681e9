#!/usr/bin/env bash
# Stepping benchmark. Part 1: the stepping rate of `hyperstep trace --accel kvm --trace-accel
# kvm` (KVM single-stepping; release build, output to a file; without --trace-accel kvm the
# trace would move to the interpreter) against a bare C KVM_GUESTDBG_SINGLESTEP loop on the same tight-loop guest
# (Benchmarks/c/kvm_step.c), run alternately in one invocation; both report the stepping
# loop alone, start-up excluded. Part 2 (skipped with --no-memory): resident memory while
# `hyperstep trace` steps a never-ending guest 10 million times, sampled every few seconds.
#
#   Benchmarks/step.sh [ROUNDS] [--no-memory]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
memory=yes
for argument in "$@"; do
  case "$argument" in
    --no-memory) memory=no ;;
    *) rounds=$argument ;;
  esac
done
toolchain_bin=$(dirname "$(readlink -f "$(command -v swift)")")
work=.build/bench
mkdir -p "$work"
swift build -c release --product hyperstep >/dev/null
swift build -c release --product hyperstep-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
"$toolchain_bin/clang" -O2 -Wno-gnu-variable-sized-type-not-at-end -o "$work/kvm_step" Benchmarks/c/kvm_step.c
"$bin/hyperstep-bench" write-flat tight_loop "$work/tight_loop.flat"
"$bin/hyperstep-bench" write-guest tight_loop "$work/tight_loop.elf"
"$bin/hyperstep-bench" write-guest forever "$work/forever.elf"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

c_rates=() h_rates=()
for ((round = 0; round < rounds; round++)); do
  read -r steps ns < <("$work/kvm_step" "$work/tight_loop.flat" 0x100000 "$work/c.trace")
  c_rates+=("$(awk -v s="$steps" -v n="$ns" 'BEGIN { printf "%d", s / (n / 1e9) }')")
  line=$("$bin/hyperstep" trace --accel kvm --trace-accel kvm --kernel "$work/tight_loop.elf" --output "$work/h.trace" --stats 2>&1 >/dev/null | tail -n 1 || true)
  h_rates+=("$(echo "$line" | sed -n 's/.*(\([0-9]*\) stops\/s).*/\1/p')")
done
c_rate=$(printf '%s\n' "${c_rates[@]}" | median)
h_rate=$(printf '%s\n' "${h_rates[@]}" | median)
echo "stepping benchmark: tight_loop guest, $(wc -l < "$work/h.trace") stops, $rounds alternating rounds, medians"
echo "  bare C KVM_RUN single-step loop   $c_rate steps/s"
echo "  hyperstep trace (KVM stepping)    $h_rate steps/s   ($(awk -v h="$h_rate" -v c="$c_rate" 'BEGIN { printf "%.1f", 100 * h / c }')% of the C loop)"
echo "  traces identical but for symbols: $(cut -d' ' -f1 "$work/h.trace" | head -n -1 | cmp -s - "$work/c.trace" && echo yes || echo NO)"

if [ "$memory" = yes ]; then
  "$bin/hyperstep" trace --accel kvm --trace-accel kvm --kernel "$work/forever.elf" --limit 10000000 --output /dev/null --stats 2>"$work/forever.err" &
  pid=$!
  samples=()
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && samples+=("$rss")
    sleep 5
  done
  wait "$pid" || true
  echo "  10 million steps of the forever guest: $(tail -n 1 "$work/forever.err")"
  echo "  resident memory every 5 s (KiB): ${samples[*]}"
fi
