#!/usr/bin/env bash
# Hyperstep's x86 interpreter against QEMU's TCG, on one compute-bound guest
# (Guests/bench/compute.S: the same Multiboot ELF32 file on both, N iterations from the
# command line), alternating in one invocation so that the machine's noise hits all alike:
#
# (a) plain runs at N_PLAIN: `hyperstep run --accel emu` against `qemu-system-x86_64 -accel
#     tcg`, and `hyperstep run --accel kvm` for information (at N_KVM, by default N_TRACE:
#     KVM nested in a virtual machine without hardware help can be slower than the
#     interpreter). Guest MIPS = the instructions of N iterations over (wall time at N - wall
#     time at N = 0): the N = 0 run is each program's start-up (QEMU's includes SeaBIOS).
#     Target: the interpreter at 0.25x TCG or better. `--accel emu` runs translated blocks (the
#     JIT tier); the row "HYPERSTEP_JIT=0" is the same engine interpreting every instruction.
# (b) traced runs at N_TRACE, one line per instruction to a file: `hyperstep trace --accel
#     emu --output F` against QEMU's single-step exec log (`-accel tcg -singlestep -d
#     exec,nochain -D F`; `-accel tcg,one-insn-per-tb=on` on a QEMU that has it) and against
#     `hyperstep trace --accel kvm --trace-accel kvm --output F` (KVM single-stepping: without
#     --trace-accel kvm a KVM machine moves to the interpreter to trace). Instructions traced per
#     second, start-up subtracted as in (a). Targets: 10x QEMU's log and 20x KVM stepping.
#
# The instruction counts are exact, not assumed: the guest's count (its header comment, from
# its disassembly) is checked against a Hyperstep trace before anything is timed, and every
# traced run's count against the same formula. Each run's checksum line must agree with
# the others of its N, QEMU's included. Each figure is the median of ROUNDS runs (default 3).
# Installs Debian's qemu-system-x86 if it is missing (Hyperstep never needs it). Without a
# usable /dev/kvm (or with --no-kvm) the KVM rows are skipped, and the output says so.
# --trace-only measures (b) alone (trace throughput), its baselines still side by side.
#
#   Benchmarks/interp-vs-tcg.sh [N_PLAIN] [N_TRACE] [--rounds ROUNDS] [--kvm-plain N_KVM] [--no-kvm] [--trace-only]
set -euo pipefail
cd "$(dirname "$0")/.."
n_plain=20000 n_trace=20 rounds=3 n_kvm= use_kvm=yes plain=yes
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=${2:?"--rounds needs a number"}; shift ;;
    --rounds=*) rounds=${1#--rounds=} ;;
    --kvm-plain) n_kvm=${2:?"--kvm-plain needs a number"}; shift ;;
    --kvm-plain=*) n_kvm=${1#--kvm-plain=} ;;
    --no-kvm) use_kvm=no ;;
    --trace-only) plain=no ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
if [ ${#positional[@]} -gt 2 ]; then echo "interp-vs-tcg.sh: too many arguments: ${positional[*]}" >&2; exit 2; fi
if [ ${#positional[@]} -ge 1 ]; then n_plain=${positional[0]}; fi
if [ ${#positional[@]} -ge 2 ]; then n_trace=${positional[1]}; fi
if [ -z "$n_kvm" ]; then n_kvm=$n_trace; fi
for value in "$n_plain" "$n_trace" "$rounds" "$n_kvm"; do
  case "$value" in
    '' | *[!0-9]*) echo "interp-vs-tcg.sh: '$value' is not a whole number" >&2; exit 2 ;;
  esac
done
[ "$n_plain" -gt 0 ] && [ "$n_trace" -gt 0 ] && [ "$rounds" -gt 0 ] && [ "$n_kvm" -gt 0 ] || {
  echo "interp-vs-tcg.sh: N_PLAIN, N_TRACE, ROUNDS and N_KVM must be at least 1" >&2
  exit 2
}

if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "interp-vs-tcg.sh: installing qemu-system-x86 (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null
fi
toolchain_bin=$(dirname "$(readlink -f "$(command -v swift)")")
work=.build/bench/interp-vs-tcg
mkdir -p "$work"
swift build -c release --product hyperstep >/dev/null
hyperstep="$(swift build -c release --show-bin-path)/hyperstep"
# The guest, built exactly as the TestGuests target builds it.
sh Guests/build-guests.sh BenchGuests "$work/guests.swift" "$work/guests" "$toolchain_bin/clang" \
  "$toolchain_bin/ld.lld" "$toolchain_bin/llvm-objcopy" Guests/bench/compute.S
kernel="$work/guests/compute.elf"
code_end=$("$toolchain_bin/llvm-nm" "$kernel" | awk '$3 == "data_start" { print "0x" $1 }')
[ -n "$code_end" ] || { echo "interp-vs-tcg.sh: no data_start symbol in $kernel" >&2; exit 1; }

# Guests/bench/compute.S's instruction count (see its header comment): a fixed part, 10 per
# digit and 9 per other character of the command line, and 35866 per iteration.
per_iteration=35866
instructions() { # instructions COMMAND_LINE N
  local digits others
  digits=$(printf '%s' "$1" | tr -cd 0-9 | wc -c)
  others=$(($(printf '%s' "$1" | wc -c) - digits))
  echo $((1677 + 10 * digits + 9 * others + per_iteration * $2))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# timed OUT COMMAND...: runs COMMAND with its standard output in OUT and prints its wall time
# in nanoseconds; stops the benchmark unless the guest left through the debug exit with
# PASS (status 33 on both emulators).
timed() {
  local out=$1 start end status=0
  shift
  start=$(date +%s%N)
  "$@" <"/dev/null" >"$out" 2>"$out.err" || status=$?
  end=$(date +%s%N)
  if [ "$status" != 33 ]; then
    echo "interp-vs-tcg.sh: '$*' exited with status $status, not 33:" >&2
    cat "$out.err" >&2
    exit 1
  fi
  echo $((end - start))
}

# Every run's checksum line must be the same for the same N, whichever engine printed it.
declare -A checksum
check_output() { # check_output OUT N WHO
  local line
  line=$(cat "$1")
  if [ -z "${checksum[$2]+set}" ]; then
    checksum[$2]=$line
  elif [ "${checksum[$2]}" != "$line" ]; then
    echo "interp-vs-tcg.sh: $3 printed '$line' for N = $2, but an earlier run printed '${checksum[$2]}'" >&2
    exit 1
  fi
}

qemu_common=(-m 64 -display none -nodefaults -no-reboot -serial stdio
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$kernel")
# QEMU puts the kernel's file name before -append's text on the Multiboot command line.
qemu_cmdline() { echo "$kernel $1"; }

# One instruction per translation block: QEMU 8.1 spells it as an accelerator property,
# older QEMUs (Debian 12 has 7.2) as -singlestep.
status=0
qemu-system-x86_64 -accel tcg,one-insn-per-tb=on "${qemu_common[@]}" -append 0 </dev/null >/dev/null 2>&1 || status=$?
if [ "$status" = 33 ]; then qemu_single=(-accel tcg,one-insn-per-tb=on); else qemu_single=(-accel tcg -singlestep); fi

kvm=no kvm_absent="/dev/kvm is missing or unusable here"
if [ "$use_kvm" = no ]; then
  kvm_absent="--no-kvm"
elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  status=0
  "$hyperstep" run --accel kvm --kernel "$kernel" --cmdline 0 </dev/null >/dev/null 2>&1 || status=$?
  if [ "$status" = 33 ]; then kvm=yes; fi
fi

# Traced instructions. A Hyperstep trace has a line per stop: the entry, then one after each
# instruction. QEMU's exec log (nochain, one instruction per block) has a "Trace" line per
# block it enters, so per instruction, and a "Stopped execution of TB chain before" line when
# it left a block it had logged without running it (an exit request): those are taken off.
# Only the kernel's code is counted: SeaBIOS runs first on QEMU (-dfilter keeps it out of the
# log: it would add millions of lines of start-up to every run).
hyperstep_count() { echo $(($(wc -l <"$1") - 1)); }
qemu_count() {
  awk -F'[][/]' -v lo="$(printf '%016x' 0x100000)" -v hi="$(printf '%016x' "$code_end")" '
    /^Trace/ && ($3 "") >= (lo "") && ($3 "") < (hi "") { n++ }
    /^Stopped/ && ($2 "") >= (lo "") && ($2 "") < (hi "") { n-- }
    END { print n + 0 }' "$1"
}
qemu_log=(-d exec,nochain -dfilter "0x100000+$(printf '0x%x' $((code_end - 0x100000)))")

# The count first: a trace of a small run has exactly the instructions the formula says.
expected=$(instructions 3 3)
"$hyperstep" trace --accel emu --kernel "$kernel" --cmdline 3 --limit 100000000 --output "$work/check.trace" \
  </dev/null >"$work/check.out" 2>&1 || true
traced=$(hyperstep_count "$work/check.trace")
if [ "$traced" != "$expected" ]; then
  echo "interp-vs-tcg.sh: hyperstep trace of --cmdline 3 has $traced instructions; compute.S's count says $expected" >&2
  exit 1
fi
rm -f "$work/check.trace"

# traced_run ARRAY COUNT_FUNCTION COMMAND_LINE N WHO COMMAND...: one traced run; its time
# goes to ARRAY, and its instruction count must be what the formula says for its command line.
traced_run() {
  local array=$1 count=$2 cmdline=$3 n=$4 who=$5 t got want
  shift 5
  t=$(timed "$work/out" "$@")
  check_output "$work/out" "$n" "$who"
  got=$($count "$work/trace")
  want=$(instructions "$cmdline" "$n")
  if [ "$got" != "$want" ]; then
    echo "interp-vs-tcg.sh: $who traced $got instructions at N = $n; compute.S's count says $want" >&2
    exit 1
  fi
  rm -f "$work/trace"
  eval "$array+=($t)"
}

emu_plain=() emu_plain0=() interp_plain=() interp_plain0=() tcg_plain=() tcg_plain0=() kvm_plain=() kvm_plain0=()
emu_trace=() emu_trace0=() qemu_trace=() qemu_trace0=() kvm_trace=() kvm_trace0=()
for ((round = 1; round <= rounds; round++)); do
  echo "round $round of $rounds ..." >&2
  for n in 0 "$n_plain"; do
    if [ "$plain" = no ]; then break; fi
    suffix=$([ "$n" = 0 ] && echo 0 || true)
    t=$(timed "$work/out" "$hyperstep" run --accel emu --kernel "$kernel" --cmdline "$n")
    check_output "$work/out" "$n" "hyperstep run --accel emu"
    eval "emu_plain$suffix+=($t)"
    t=$(HYPERSTEP_JIT=0 timed "$work/out" "$hyperstep" run --accel emu --kernel "$kernel" --cmdline "$n")
    check_output "$work/out" "$n" "HYPERSTEP_JIT=0 hyperstep run --accel emu"
    eval "interp_plain$suffix+=($t)"
    t=$(timed "$work/out" qemu-system-x86_64 -accel tcg "${qemu_common[@]}" -append "$n")
    check_output "$work/out" "$n" "qemu-system-x86_64 -accel tcg"
    eval "tcg_plain$suffix+=($t)"
  done
  if [ "$kvm" = yes ] && [ "$plain" = yes ]; then
    for n in 0 "$n_kvm"; do
      suffix=$([ "$n" = 0 ] && echo 0 || true)
      t=$(timed "$work/out" "$hyperstep" run --accel kvm --kernel "$kernel" --cmdline "$n")
      check_output "$work/out" "$n" "hyperstep run --accel kvm"
      eval "kvm_plain$suffix+=($t)"
    done
  fi
  for n in 0 "$n_trace"; do
    suffix=$([ "$n" = 0 ] && echo 0 || true)
    limit=$(($(instructions "$n" "$n") + 2))
    traced_run "emu_trace$suffix" hyperstep_count "$n" "$n" "hyperstep trace --accel emu" \
      "$hyperstep" trace --accel emu --kernel "$kernel" --cmdline "$n" --limit "$limit" --output "$work/trace"
    traced_run "qemu_trace$suffix" qemu_count "$(qemu_cmdline "$n")" "$n" "QEMU's single-step log" \
      qemu-system-x86_64 "${qemu_single[@]}" "${qemu_log[@]}" -D "$work/trace" "${qemu_common[@]}" -append "$n"
    if [ "$kvm" = yes ]; then
      traced_run "kvm_trace$suffix" hyperstep_count "$n" "$n" "hyperstep trace --accel kvm --trace-accel kvm" \
        "$hyperstep" trace --accel kvm --trace-accel kvm --kernel "$kernel" --cmdline "$n" --limit "$limit" \
        --output "$work/trace"
    fi
  done
done

# row LABEL RUNS_N RUNS_0 INSTRUCTIONS: prints the row, sets $rate (instructions per second;
# empty when the run at N took no longer than start-up: N is too small to measure).
row() {
  local label=$1 wall start
  wall=$(eval "printf '%s\n' \"\${$2[@]}\"" | median)
  start=$(eval "printf '%s\n' \"\${$3[@]}\"" | median)
  rate=$(awk -v i="$4" -v w="$wall" -v s="$start" 'BEGIN { if (w > s) printf "%.0f", i / ((w - s) / 1e9) }')
  awk -v l="$label" -v w="$wall" -v s="$start" -v r="$rate" 'BEGIN {
    printf "  %-52s %8.3f %11.3f %12s\n", l, w / 1e9, s / 1e9, (r == "") ? "too short" : sprintf("%.2f", r / 1e6) }'
}
# verdict A B TARGET: A / B against the target ratio.
verdict() {
  if [ -z "$1" ] || [ -z "$2" ]; then
    echo "not measured: a run at N was no longer than start-up; raise N"
  else
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { printf "%.3fx   (target %sx: %s)", a / b, t, (a / b >= t) ? "met" : "NOT met" }'
  fi
}

plain_instructions=$(($(instructions "$n_plain" "$n_plain") - $(instructions 0 0)))
kvm_instructions=$(($(instructions "$n_kvm" "$n_kvm") - $(instructions 0 0)))
trace_instructions=$(($(instructions "$n_trace" "$n_trace") - $(instructions 0 0)))
echo
echo "interpreter against QEMU TCG: Guests/bench/compute.S, $per_iteration instructions per iteration"
echo "  (checked: hyperstep trace --cmdline 3 traced $expected instructions, as the guest's count says)"
echo "  $rounds alternating rounds, medians; start-up = the same command at N = 0, subtracted for the rates"
echo "  $(qemu-system-x86_64 --version | head -n 1); single-step flag: ${qemu_single[*]}"
if [ "$kvm" = no ]; then echo "  KVM: $kvm_absent; the KVM rows are skipped"; fi
echo
if [ "$plain" = yes ]; then
  echo "(a) plain runs, N = $n_plain: $plain_instructions instructions past start-up"
  printf '  %-52s %8s %11s %12s\n' "" "wall s" "start-up s" "guest MIPS"
  row "hyperstep run --accel emu" emu_plain emu_plain0 "$plain_instructions"
  emu_rate=$rate
  row "HYPERSTEP_JIT=0 hyperstep run --accel emu" interp_plain interp_plain0 "$plain_instructions"
  interp_rate=$rate
  row "qemu-system-x86_64 -accel tcg" tcg_plain tcg_plain0 "$plain_instructions"
  tcg_rate=$rate
  if [ "$kvm" = yes ]; then
    row "hyperstep run --accel kvm (information, N = $n_kvm)" kvm_plain kvm_plain0 "$kvm_instructions"
  fi
  echo "  emu (JIT tier) / TCG         $(verdict "$emu_rate" "$tcg_rate" 0.25)"
  echo "  emu, HYPERSTEP_JIT=0 / TCG   $(verdict "$interp_rate" "$tcg_rate" 0.25)"
else
  echo "(a) plain runs: skipped (--trace-only)"
fi
echo
echo "(b) traced runs, N = $n_trace: $trace_instructions instructions past start-up, in every trace"
printf '  %-52s %8s %11s %12s\n' "" "wall s" "start-up s" "M instr/s"
row "hyperstep trace --accel emu --output F" emu_trace emu_trace0 "$trace_instructions"
emu_rate=$rate
row "qemu ${qemu_single[*]} -d exec,nochain -D F" qemu_trace qemu_trace0 "$trace_instructions"
qemu_rate=$rate
if [ "$kvm" = yes ]; then
  row "hyperstep trace --accel kvm --trace-accel kvm" kvm_trace kvm_trace0 "$trace_instructions"
  kvm_rate=$rate
fi
echo "  interpreter / QEMU's log     $(verdict "$emu_rate" "$qemu_rate" 10)"
if [ "$kvm" = yes ]; then
  echo "  interpreter / KVM stepping   $(verdict "$emu_rate" "$kvm_rate" 20)"
else
  echo "  interpreter / KVM stepping   skipped: $kvm_absent"
fi
echo
echo "checksums, the same from every engine:"
for n in $(printf '%s\n' 0 "$n_plain" "$n_trace" "$n_kvm" | sort -nu); do
  # (with --trace-only there is no checksum at N_PLAIN or N_KVM, and none is printed)
  if [ -n "${checksum[$n]+set}" ]; then echo "  N = $n: ${checksum[$n]}"; fi
done
