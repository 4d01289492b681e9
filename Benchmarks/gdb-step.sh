#!/usr/bin/env bash
# GDB stepping benchmark: gdb's `stepi N` on the same looping Multiboot guest through
# Hyperstep's GDB server and through QEMU's gdbstub with KVM (qemu-system-x86_64 -accel kvm
# -S -gdb ...), alternating in one invocation. Both first run to the loop on a hardware
# breakpoint; only the stepping is timed, inside gdb. Installs Debian's qemu-system-x86 if
# it is missing (the tests never need it).
#
#   Benchmarks/gdb-step.sh [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-5000}
if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "gdb-step.sh: installing qemu-system-x86 (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null
fi
work=.build/bench
mkdir -p "$work"
swift build -c release --product hyperstep >/dev/null
swift build -c release --product hyperstep-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
"$bin/hyperstep-bench" write-guest multiboot_loop "$work/multiboot_loop.elf"
spin=$(llvm-objdump -t "$work/multiboot_loop.elf" 2>/dev/null | awk '$NF == "spin" { print "0x" $1 }')
[ -n "$spin" ] || spin=$("$(dirname "$(readlink -f "$(command -v swift)")")/llvm-objdump" -t "$work/multiboot_loop.elf" | awk '$NF == "spin" { print "0x" $1 }')

# Seconds gdb spends on `stepi $steps` once stopped in the loop, for a target at $1.
time_steps() {
  gdb -batch -nx -ex "target remote $1" -ex "hbreak *$spin" -ex continue -ex "delete" \
    -ex 'python import time; t0 = time.time()' -ex "stepi $steps" \
    -ex 'python print("elapsed %.6f" % (time.time() - t0))' -ex kill 2>&1 | sed -n 's/^elapsed //p'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

h_times=() q_times=()
for ((round = 0; round < rounds; round++)); do
  socket="$work/hyperstep-gdb.sock"
  "$bin/hyperstep" debug --kernel "$work/multiboot_loop.elf" --gdb "unix:$socket" 2>/dev/null &
  pid=$!
  while [ ! -S "$socket" ]; do sleep 0.05; done
  h_times+=("$(time_steps "$socket")")
  wait "$pid" || true

  port=$((20000 + RANDOM % 20000))
  qemu-system-x86_64 -accel kvm -kernel "$work/multiboot_loop.elf" -S -gdb "tcp:127.0.0.1:$port" \
    -display none -serial none -monitor none -nodefaults 2>/dev/null &
  pid=$!
  sleep 0.5
  q_times+=("$(time_steps "127.0.0.1:$port")")
  wait "$pid" || true
done
h=$(printf '%s\n' "${h_times[@]}" | median)
q=$(printf '%s\n' "${q_times[@]}" | median)
echo "gdb stepping benchmark: stepi $steps on multiboot_loop, $rounds alternating rounds, medians"
echo "  QEMU 7.2 gdbstub, KVM     $(awk -v t="$q" -v n="$steps" 'BEGIN { printf "%d", n / t }') steps/s  (${q} s)"
echo "  Hyperstep GDB server      $(awk -v t="$h" -v n="$steps" 'BEGIN { printf "%d", n / t }') steps/s  (${h} s)"
echo "  ratio                     $(awk -v h="$h" -v q="$q" 'BEGIN { printf "%.2fx", q / h }') QEMU's rate"
