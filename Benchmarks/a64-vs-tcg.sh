#!/bin/bash
# Hyperstep's AArch64 interpreter against QEMU on one compute-bound guest
# (Guests/aarch64/a64_compute.S, assembled with -DITERATIONS=N: the same ELF on both), in one
# invocation, side by side, for issue 12's targets:
#   (a) plain runs: `hyperstep run` against `qemu-system-aarch64 -M virt -cpu cortex-a57
#       -accel tcg` (target: at least 0.25x QEMU's instructions per second);
#   (b) traced runs: `hyperstep trace --output F` against QEMU's exec log with one instruction
#       per block (-singlestep -d exec,nochain -D F) (target: at least 10x);
#   (c) gdb-multiarch `stepi 5000` against `hyperstep debug` and against QEMU's gdbstub
#       (-s -S) (target: at least 3x).
# Each is timed ROUNDS times, alternating, and the median taken; the same command at N = 0
# (start-up: loading, the first translation, gdb's connection) is subtracted for the rates.
# The instruction count of N iterations is measured, not assumed: two traces (N = 1, 2)
# give the fixed part and the per-iteration part, and every run must print the same checksum.
# Installs Debian's qemu-system-arm and gdb-multiarch if missing (Hyperstep never needs them).
#
#   Benchmarks/a64-vs-tcg.sh [N_PLAIN] [N_TRACE] [--rounds ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
n_plain=2000 n_trace=20 rounds=3
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=${2:?"--rounds needs a number"}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
if [ ${#positional[@]} -ge 1 ]; then n_plain=${positional[0]}; fi
if [ ${#positional[@]} -ge 2 ]; then n_trace=${positional[1]}; fi
for value in "$n_plain" "$n_trace" "$rounds"; do
  case "$value" in '' | *[!0-9]* | 0) echo "a64-vs-tcg.sh: '$value' is not a positive whole number" >&2; exit 2 ;; esac
done
missing=""
command -v qemu-system-aarch64 >/dev/null || missing="$missing qemu-system-arm"
command -v gdb-multiarch >/dev/null || missing="$missing gdb-multiarch"
if [ -n "$missing" ]; then
  echo "a64-vs-tcg.sh: installing$missing (Debian packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
toolchain_bin=$(dirname "$(readlink -f "$(command -v swift)")")
work=.build/bench/a64-vs-tcg
mkdir -p "$work"
swift build -c release --product hyperstep >/dev/null
hyperstep="$(swift build -c release --show-bin-path)/hyperstep"

build() { # build N: the guest for N iterations, printing its path
  local elf="$work/compute-$1.elf"
  if [ ! -f "$elf" ]; then
    "$toolchain_bin/clang" --target=aarch64-none-elf -c -I Guests -DITERATIONS="$1" -o "$work/compute-$1.o" \
      Guests/aarch64/a64_compute.S
    "$toolchain_bin/ld.lld" -m aarch64elf -static -nostdlib -T Guests/guest.ld --defsym=LOAD_ADDRESS=0x40080000 \
      -o "$elf" "$work/compute-$1.o"
  fi
  echo "$elf"
}

qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57 -m 128 -display none -nodefaults -no-reboot -serial stdio
  -semihosting)
timed() { # timed OUT COMMAND...: runs it, output to OUT, prints wall nanoseconds
  local out=$1 start end
  shift
  start=$(date +%s%N)
  "$@" </dev/null >"$out" 2>&1 || { echo "a64-vs-tcg.sh: '$*' failed: $(head -c 300 "$out")" >&2; exit 1; }
  end=$(date +%s%N)
  echo $((end - start))
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The count: a trace has a line per stop, the entry and one after each instruction.
count() { "$hyperstep" trace --kernel "$(build "$1")" --limit 1000000000 --output "$work/count.trace" >/dev/null 2>&1
  echo $(($(wc -l <"$work/count.trace") - 1)); }
one=$(count 1)
two=$(count 2)
per_iteration=$((two - one))
fixed=$((one - per_iteration))
instructions() { echo $((fixed + per_iteration * $1)); }

declare -A checksum
check() { # check OUT N WHO: every run at N prints the same compute line
  local line
  line=$(grep '^compute:' "$1" || true)
  [ -n "$line" ] || { echo "a64-vs-tcg.sh: $3 printed no result for N = $2: $(head -c 300 "$1")" >&2; exit 1; }
  if [ -z "${checksum[$2]+set}" ]; then checksum[$2]=$line; elif [ "${checksum[$2]}" != "$line" ]; then
    echo "a64-vs-tcg.sh: $3 printed '$line' for N = $2, an earlier run '${checksum[$2]}'" >&2; exit 1
  fi
}

# Traced instructions in QEMU's log: a "Trace" line per block entered (one instruction each),
# less the "Stopped execution of TB chain" lines for blocks logged but left unrun.
qemu_count() { awk '/^Trace/ { n++ } /^Stopped/ { n-- } END { print n + 0 }' "$1"; }

gdb_steps() { # gdb_steps TARGET: gdb-multiarch connects and steps 5000 instructions
  gdb-multiarch -batch -nx -ex 'set pagination off' -ex "target remote $1" -ex 'stepi 5000' -ex 'kill'
}
gdb_connect() { gdb-multiarch -batch -nx -ex "target remote $1" -ex 'kill'; }
port=$((20000 + RANDOM % 20000))
hyperstep_debug() { "$hyperstep" debug --kernel "$(build "$n_plain")" --gdb "127.0.0.1:$port" >/dev/null 2>&1 & sleep 0.5; }
qemu_debug() { "${qemu[@]}" -kernel "$(build "$n_plain")" -gdb "tcp:127.0.0.1:$port" -S >/dev/null 2>&1 & sleep 0.5; }

emu_plain=() emu_plain0=() tcg_plain=() tcg_plain0=() emu_trace=() emu_trace0=() qemu_trace=() qemu_trace0=()
emu_gdb=() emu_gdb0=() qemu_gdb=() qemu_gdb0=()
for round in $(seq "$rounds"); do
  emu_plain+=("$(timed "$work/out" "$hyperstep" run --kernel "$(build "$n_plain")")"); check "$work/out" "$n_plain" hyperstep
  tcg_plain+=("$(timed "$work/out" "${qemu[@]}" -accel tcg -kernel "$(build "$n_plain")")"); check "$work/out" "$n_plain" QEMU
  emu_plain0+=("$(timed "$work/out" "$hyperstep" run --kernel "$(build 0)")")
  tcg_plain0+=("$(timed "$work/out" "${qemu[@]}" -accel tcg -kernel "$(build 0)")")
  emu_trace+=("$(timed "$work/out" "$hyperstep" trace --kernel "$(build "$n_trace")" --limit 1000000000 --output "$work/h.trace")")
  [ "$(($(wc -l <"$work/h.trace") - 1))" = "$(instructions "$n_trace")" ] || { echo "a64-vs-tcg.sh: hyperstep traced a different count" >&2; exit 1; }
  qemu_trace+=("$(timed "$work/out" "${qemu[@]}" -accel tcg -singlestep -d exec,nochain -D "$work/q.trace" -kernel "$(build "$n_trace")")")
  qemu_traced=$(qemu_count "$work/q.trace")
  emu_trace0+=("$(timed "$work/out" "$hyperstep" trace --kernel "$(build 0)" --limit 1000000000 --output "$work/h0.trace")")
  qemu_trace0+=("$(timed "$work/out" "${qemu[@]}" -accel tcg -singlestep -d exec,nochain -D "$work/q0.trace" -kernel "$(build 0)")")
  hyperstep_debug; emu_gdb+=("$(timed "$work/out" gdb_steps "127.0.0.1:$port")"); wait
  hyperstep_debug; emu_gdb0+=("$(timed "$work/out" gdb_connect "127.0.0.1:$port")"); wait
  qemu_debug; qemu_gdb+=("$(timed "$work/out" gdb_steps "127.0.0.1:$port")"); wait
  qemu_debug; qemu_gdb0+=("$(timed "$work/out" gdb_connect "127.0.0.1:$port")"); wait
done

rate() { # rate RUNS RUNS0 INSTRUCTIONS: instructions per second past start-up (empty: too short)
  local wall start
  wall=$(eval "printf '%s\n' \"\${$1[@]}\"" | median)
  start=$(eval "printf '%s\n' \"\${$2[@]}\"" | median)
  awk -v i="$3" -v w="$wall" -v s="$start" 'BEGIN { if (w > s) printf "%.0f", i / ((w - s) / 1e9) }'
}
row() { printf '  %-58s %14s\n' "$1" "$(awk -v r="$2" 'BEGIN { printf (r == "") ? "too short" : "%.2f", r / 1e6 }')"; }
verdict() {
  if [ -z "$1" ] || [ -z "$2" ]; then echo "not measured: a run was no longer than start-up; raise N"; else
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { printf "%.3fx   (target %sx: %s)\n", a / b, t, (a / b >= t) ? "met" : "NOT met" }'
  fi
}
plain=$(instructions "$n_plain")
traced=$(instructions "$n_trace")
echo "AArch64 interpreter against QEMU: Guests/aarch64/a64_compute.S, $per_iteration instructions per iteration,"
echo "  $fixed fixed (measured: traces at N = 1 and 2); $rounds alternating rounds, medians, start-up subtracted"
echo "  $(qemu-system-aarch64 --version | head -n 1); QEMU's log at N = $n_trace had $qemu_traced instructions, Hyperstep's $traced"
echo
echo "(a) plain runs, N = $n_plain ($plain instructions)                      guest MIPS"
emu=$(rate emu_plain emu_plain0 "$plain"); row "hyperstep run" "$emu"
tcg=$(rate tcg_plain tcg_plain0 "$plain"); row "qemu-system-aarch64 -accel tcg" "$tcg"
echo "  interpreter / TCG            $(verdict "$emu" "$tcg" 0.25)"
echo
echo "(b) traced runs, N = $n_trace ($traced instructions)                     M instr/s"
emu=$(rate emu_trace emu_trace0 "$traced"); row "hyperstep trace --output F" "$emu"
qemu_rate=$(rate qemu_trace qemu_trace0 "$traced"); row "qemu -singlestep -d exec,nochain -D F" "$qemu_rate"
echo "  trace / QEMU's log           $(verdict "$emu" "$qemu_rate" 10)"
echo
echo "(c) gdb-multiarch stepi 5000                                                k steps/s"
emu=$(rate emu_gdb emu_gdb0 5000000); row "against hyperstep debug" "$emu"
qemu_rate=$(rate qemu_gdb qemu_gdb0 5000000); row "against QEMU's gdbstub (-s -S)" "$qemu_rate"
echo "  Hyperstep / QEMU             $(verdict "$emu" "$qemu_rate" 3)"
