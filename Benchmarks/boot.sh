#!/usr/bin/env bash
# Boot benchmark: VM creation plus boot-to-exit of the minimal guest, Hyperstep (in-process,
# through the Machine API) against a bare C program using only the KVM API, interleaved in
# one run so that machine noise hits both alike. Then the whole `hyperstep run` process on
# the demo guest: wall time and peak resident memory.
#
#   Benchmarks/boot.sh [ROUNDS] [BOOTS_PER_ROUND]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
boots=${2:-200}
memory_mib=64
toolchain_bin=$(dirname "$(readlink -f "$(command -v swift)")")
work=.build/bench
mkdir -p "$work"

swift build -c release --product hyperstep-bench >/dev/null
swift build -c release --product hyperstep >/dev/null
bin=$(swift build -c release --show-bin-path)
"$toolchain_bin/clang" -O2 -o "$work/kvm_boot" Benchmarks/c/kvm_boot.c
"$bin/hyperstep-bench" write-guest minimal "$work/minimal.bin"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

c_times=() swift_times=()
for ((round = 0; round < rounds; round++)); do
  c_times+=("$("$work/kvm_boot" "$work/minimal.bin" "$boots" "$memory_mib")")
  swift_times+=("$("$bin/hyperstep-bench" boot "$boots" "$memory_mib")")
done
c_us=$(printf '%s\n' "${c_times[@]}" | median | awk -v n="$boots" '{ printf "%.1f", $1 / n / 1000 }')
swift_us=$(printf '%s\n' "${swift_times[@]}" | median | awk -v n="$boots" '{ printf "%.1f", $1 / n / 1000 }')
ratio=$(awk -v s="$swift_us" -v c="$c_us" 'BEGIN { printf "%.2f", s / c }')

process_ms=() rss_kib=()
for ((run = 0; run < rounds; run++)); do
  start=$(date +%s%N)
  /usr/bin/time -f %M -o "$work/rss" "$bin/hyperstep" run >/dev/null
  process_ms+=("$(( ($(date +%s%N) - start) / 1000000 ))")
  rss_kib+=("$(cat "$work/rss")")
done

echo "boot benchmark: $rounds rounds of $boots boots, ${memory_mib} MiB guests, medians"
echo "  bare C KVM boot          ${c_us} us per boot"
echo "  Hyperstep Machine boot   ${swift_us} us per boot   (${ratio}x the C baseline)"
echo "  hyperstep run (demo)     $(printf '%s\n' "${process_ms[@]}" | median) ms wall, whole process"
echo "  peak RSS (demo)          $(printf '%s\n' "${rss_kib[@]}" | median) KiB, including touched guest RAM"
