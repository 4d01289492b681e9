#!/usr/bin/env bash
# Event-API benchmark, as ratios against bare C loops on the same guests in the same run:
#
# - breakpoint events per second: an INT3 in a tight loop (the tight_loop guest, 100000
#   hits), against Benchmarks/c/kvm_events.c (stop, read registers, step over, replant);
# - MSR-filter exits per second: the msr_loop guest's 100000 WRMSRs of one MSR sent to user
#   space by KVM_X86_SET_MSR_FILTER, against Benchmarks/c/kvm_msr.c (read registers, carry
#   the write out with KVM_SET_MSRS).
#
# On hosts where Hyperstep serves the guest's own data breakpoints (PVM delivers none), the
# breakpoint events run again with the guest's debug registers not followed at each exit, for
# what following them costs (one KVM_GET_DEBUGREGS per event).
#
# The Swift handler reads the registers once per event. Each C loop runs twice: reading them
# with KVM_GET_REGS, and from kvm_run (KVM_CAP_SYNC_REGS), which is how Hyperstep's stepper
# reads them: the fair comparison. Runs alternate; medians; start-up excluded; every run's
# event count and checksum are printed so they can be compared.
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
for baseline in kvm_events kvm_msr; do
  "$toolchain_bin/clang" -O2 -Wno-gnu-variable-sized-type-not-at-end -o "$work/$baseline" "Benchmarks/c/$baseline.c"
done
for guest in tight_loop msr_loop; do
  "$bin/hyperstep-bench" write-flat "$guest" "$work/$guest.flat"
done
"$bin/hyperstep-bench" write-guest tight_loop "$work/tight_loop.elf"
loop=$("$toolchain_bin/llvm-nm" "$work/tight_loop.elf" | awk '$3 == "loop" { print "0x" $1 }')
sysenter_eip=0x176

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { awk -v e="$1" -v n="$2" 'BEGIN { printf "%d", e / (n / 1e9) }'; }
percent() { awk -v h="$1" -v c="$2" 'BEGIN { printf "%.1f", 100 * h / c }'; }

# measure NAME COMMAND...: one run, its rate appended to the array NAME, its figures to $runs.
runs=""
measure() {
  local name=$1 events ns sum
  shift
  read -r events ns sum < <("$@")
  eval "$name+=(\"$(rate "$events" "$ns")\")"
  runs="$runs $name:$events/$sum"
}
bp_c=() bp_sync=() bp_h=() bp_off=() msr_c=() msr_sync=() msr_h=()
for ((round = 0; round < rounds; round++)); do
  measure bp_c "$work/kvm_events" "$work/tight_loop.flat" 0x100000 "$loop"
  measure bp_sync "$work/kvm_events" "$work/tight_loop.flat" 0x100000 "$loop" sync
  measure bp_h "$bin/hyperstep-bench" events
  measure bp_off "$bin/hyperstep-bench" events-guest-dr-off
  measure msr_c "$work/kvm_msr" "$work/msr_loop.flat" 0x100000 "$sysenter_eip"
  measure msr_sync "$work/kvm_msr" "$work/msr_loop.flat" 0x100000 "$sysenter_eip" sync
  measure msr_h "$bin/hyperstep-bench" msr-events
done
report() {
  local title=$1 c s h
  c=$(eval "printf '%s\n' \"\${$2[@]}\"" | median)
  s=$(eval "printf '%s\n' \"\${$3[@]}\"" | median)
  h=$(eval "printf '%s\n' \"\${$4[@]}\"" | median)
  echo "$title"
  echo "  bare C loop, KVM_GET_REGS            $c events/s"
  echo "  bare C loop, registers from kvm_run  $s events/s"
  echo "  IntrospectionSession + Swift handler $h events/s   ($(percent "$h" "$c")% of the first, $(percent "$h" "$s")% of the second)"
}
echo "event benchmark: $rounds alternating rounds, medians"
report "breakpoint events (INT3 at tight_loop's loop, $loop)" bp_c bp_sync bp_h
on=$(printf '%s\n' "${bp_h[@]}" | median)
off=$(printf '%s\n' "${bp_off[@]}" | median)
echo "  the same, guest debug registers not followed: $off events/s   (following them: $(percent "$on" "$off")% of that)"
report "MSR-filter exits (msr_loop's WRMSRs of IA32_SYSENTER_EIP)" msr_c msr_sync msr_h
echo "  events/checksum per run:$runs"
