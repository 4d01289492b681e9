#!/bin/bash
# Compares the PC of every instruction boundary of AArch64 guests on Hyperstep and on QEMU:
# `hyperstep trace --irq deliver` (each line starts with the PC) against gdb-multiarch
# stepping `qemu-system-aarch64 -M virt -cpu cortex-a57 -semihosting` through its gdbstub
# (scripts/qemu-gdb-pcs.py), then scripts/compare-pcs.py: the count compared, or the first
# difference with its index, both PCs and the listing around it. Called by
# scripts/aarch64-vs-qemu.sh for every guest; the tests call it with a small cap.
#
# Why gdb stepping rather than QEMU's `-singlestep -d exec,nochain` log: the log names each
# translation block QEMU executes, and an instruction whose fetch faults has none (a64_mmu's
# jump to its PXN page is missing from it), while a gdb step stops at every boundary, which is
# what a trace line is. gdb's own `stepi` is not used either: it steps an LDXR..STXR sequence
# as one; scripts/qemu-gdb-pcs.py sends the protocol's `s` packet instead. QEMU's default of
# masking interrupts and timers while stepping is turned off (Qqemu.sstep=0x1), as --irq
# deliver is on Hyperstep, and `-icount shift=0` makes QEMU's clock run with its instruction
# count (one nanosecond each) except while it idles, so the timer guest's interrupts come
# while it waits in WFI on both machines rather than wherever host time puts them.
#
# Where the sequences differ by design (README, "Against QEMU"):
#   a64_bad     tests Hyperstep's own error paths (see aarch64-vs-qemu.sh): not compared.
#   a64_smp     hyperstep trace steps CPU 0 with the other CPUs standing still (the step
#               contract), while QEMU runs CPU 1 beside the stepped CPU 0: CPU 0's LDXR/STXR
#               retries and its wait for CPU 1 differ. Not compared.
#   a64_checks  QEMU's known departure at `unaligned_at` (no Alignment fault on Device memory
#               with the MMU off): the runs part there and are compared again where they meet.
#   a64_debug, a64_timer: an exception entered at the boundary after an instruction (the
#               guest's Software Step exception after each of its five stepped EL0
#               instructions, its breakpoint on `bp_target`; each of the three timer IRQs
#               waking WFI) comes within the same gdb step on QEMU, while Hyperstep stops at
#               that boundary first. compare-pcs.py --collapsed drops exactly that many.
#
#   scripts/aarch64-pcs-vs-qemu.sh [--cap N] [--hyperstep PATH --elf-dir DIR] [GUEST...]
#
# --cap: the most instructions compared per guest (default 20000; gdb steps QEMU at about
# 700 instructions a second). GUEST: names under Guests/aarch64 (default: all). Without
# --hyperstep and --elf-dir it builds both. Exit status 0 when every comparison agrees (or
# stops at an explained departure), 1 when one differs, 2 for bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
cap=20000 hyperstep="" elf_dir="" guests=() qemu_time="-icount shift=0"
while [ $# -gt 0 ]; do
  case "$1" in
  --cap)
    cap=${2:-}
    shift 2 || true
    ;;
  --hyperstep)
    hyperstep=${2:-}
    shift 2 || true
    ;;
  --elf-dir)
    elf_dir=${2:-}
    shift 2 || true
    ;;
  -*)
    echo "aarch64-pcs-vs-qemu.sh: unknown option '$1'" >&2
    exit 2
    ;;
  *)
    guests+=("$1")
    shift
    ;;
  esac
done
if ! [[ "$cap" =~ ^[1-9][0-9]*$ ]]; then
  echo "aarch64-pcs-vs-qemu.sh: --cap '$cap' is not a positive number" >&2
  exit 2
fi
missing=""
command -v qemu-system-aarch64 >/dev/null || missing="$missing qemu-system-arm"
command -v gdb-multiarch >/dev/null || missing="$missing gdb-multiarch"
if [ -n "$missing" ]; then
  echo "aarch64-pcs-vs-qemu.sh: installing$missing (Debian packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
toolchain_bin=$(dirname "$(readlink -f "$(command -v swift || command -v llvm-objdump)")")
objdump="$toolchain_bin/llvm-objdump"
work=.build/aarch64-pcs-vs-qemu
mkdir -p "$work"
if [ -z "$hyperstep" ]; then
  swift build --product hyperstep >/dev/null
  hyperstep="$(swift build --show-bin-path)/hyperstep"
fi
if [ -z "$elf_dir" ]; then
  elf_dir="$work/guests"
  sh Guests/build-guests.sh AArch64Guests "$work/guests.swift" "$elf_dir" "$toolchain_bin/clang" \
    "$toolchain_bin/ld.lld" "$toolchain_bin/llvm-objcopy" Guests/aarch64/*.S
fi
if [ ${#guests[@]} -eq 0 ]; then
  for source in Guests/aarch64/*.S; do guests+=("$(basename "$source" .S)"); done
fi

qemu_pid=""
end_qemu() { if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi; qemu_pid=""; }
trap end_qemu EXIT

# QEMU under gdb: the PCs of the first $cap boundaries into $2. A port is tried until QEMU
# gets one (another program may hold it).
qemu_pcs() {
  local elf=$1 out=$2 port tries=0
  : >"$out"
  while [ $tries -lt 5 ]; do
    tries=$((tries + 1))
    port=$((20000 + RANDOM % 20000))
    qemu-system-aarch64 -M virt -cpu cortex-a57 -m 128 -display none -nodefaults -serial null -semihosting $qemu_time \
      -kernel "$elf" -gdb "tcp:127.0.0.1:$port" -S </dev/null >"$out.qemu-log" 2>&1 &
    qemu_pid=$!
    for _ in $(seq 50); do
      if ss -ltn "sport = :$port" | grep -q LISTEN || ! kill -0 "$qemu_pid" 2>/dev/null; then break; fi
      sleep 0.1
    done
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
      wait "$qemu_pid" 2>/dev/null || true
      qemu_pid=""
      continue
    fi
    PCS_CAP=$cap PCS_OUT=$out timeout $((60 + cap / 100)) gdb-multiarch -nx -batch -ex 'set architecture aarch64' \
      -ex "target remote 127.0.0.1:$port" -x scripts/qemu-gdb-pcs.py >"$out.gdb-log" 2>&1 || true
    end_qemu
    return 0
  done
  echo "aarch64-pcs-vs-qemu.sh: qemu-system-aarch64 did not start: $(head -c 300 "$out.qemu-log")" >&2
  return 1
}

status=0 compared=0 total=0
for guest in "${guests[@]}"; do
  elf="$elf_dir/$guest.elf"
  if [ ! -f "$elf" ]; then
    echo "aarch64-pcs-vs-qemu.sh: no guest '$guest' (no $elf)" >&2
    exit 2
  fi
  options=()
  case "$guest" in
  a64_bad | a64_smp)
    echo "$guest: PC sequence not compared (see the top of scripts/aarch64-pcs-vs-qemu.sh)"
    continue
    ;;
  a64_checks) options=(--known unaligned_at) ;;
  a64_debug) options=(--collapsed 6) ;;
  a64_timer) options=(--collapsed 3) ;;
  esac
  qemu_pcs "$elf" "$work/$guest.qemu.pcs"
  timeout $((60 + cap / 1000)) "$hyperstep" trace --kernel "$elf" --irq deliver --limit "$cap" \
    --format jsonl --output "$work/$guest.hyperstep.pcs" >/dev/null 2>"$work/$guest.hyperstep.stderr" || true
  set +e
  result=$(python3 scripts/compare-pcs.py "$guest" "$work/$guest.hyperstep.pcs" "$work/$guest.qemu.pcs" "$elf" \
    "$objdump" --cap "$cap" ${options[@]+"${options[@]}"})
  verdict=$?
  set -e
  echo "$result"
  compared=$((compared + 1))
  count=$(printf '%s\n' "$result" | grep -o '^[^:]*: \(the first \)\?[0-9]*' | grep -o '[0-9]*$' || echo 0)
  total=$((total + ${count:-0}))
  if [ $verdict -ne 0 ]; then status=1; fi
done
echo "aarch64-pcs-vs-qemu: $compared guests compared, $total instructions in all (cap $cap per guest)"
exit $status
