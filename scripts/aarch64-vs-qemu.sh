#!/bin/bash
# Runs every AArch64 guest (Guests/aarch64/*.S) on Hyperstep's AArch64 engine and on
# `qemu-system-aarch64 -M virt -cpu cortex-a57 -semihosting`, and compares what each printed
# on its serial port and its exit status; then the PC of every instruction boundary, through
# scripts/aarch64-pcs-vs-qemu.sh (gdb-multiarch stepping QEMU against `hyperstep trace`, up to
# --cap instructions a guest, 20000 unless given). Installs Debian's qemu-system-arm and
# gdb-multiarch if they are missing (QEMU is a reference here; Hyperstep never needs it).
#
# Known departures of QEMU (Debian 12's 7.2) from the ARM ARM are explained, not hidden:
#   a64_checks: with the MMU off every data access is to Device-nGnRnE memory, so an
#     unaligned LDR takes an Alignment fault (ARM ARM B2.5.2, D5.2.9); QEMU 7.2 performs
#     the access. The three checks after `unaligned_at` then fail on QEMU only.
#   a64_bad: tests Hyperstep's own error paths, where the machines differ by design: its AES
#     instruction is unimplemented in Hyperstep (UNDEFINED, EC 0) but an FP access trap on
#     QEMU's Cortex-A57, which has the Cryptographic Extension (EC 0x07, CPACR_EL1.FPEN = 0),
#     and QEMU has its PCIe window where Hyperstep has nothing. Its output is only shown.
#
#   scripts/aarch64-vs-qemu.sh [--cap N]
set -euo pipefail
cd "$(dirname "$0")/.."
cap=20000
if [ "${1:-}" = --cap ]; then cap=${2:-}; fi
if ! command -v qemu-system-aarch64 >/dev/null; then
  echo "aarch64-vs-qemu.sh: installing qemu-system-arm (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi
toolchain_bin=$(dirname "$(readlink -f "$(command -v swift)")")
work=.build/aarch64-vs-qemu
mkdir -p "$work"
swift build --product hyperstep >/dev/null
hyperstep="$(swift build --show-bin-path)/hyperstep"
sh Guests/build-guests.sh AArch64Guests "$work/guests.swift" "$work/guests" "$toolchain_bin/clang" \
  "$toolchain_bin/ld.lld" "$toolchain_bin/llvm-objcopy" Guests/aarch64/*.S

# The CPUs a guest needs: its source's "--cpus N" mention, else 1.
cpus_of() { grep -o -- '--cpus [0-9]*' "$1" | head -n 1 | awk '{ print $2 }' | grep . || echo 1; }

# The check numbers a64_checks gives the three checks after `unaligned_at` (CHECK and
# CHECKFLAGS lines counted in source order, as the guest counts them at run time).
unaligned_checks() {
  awk '/^[[:space:]]*CHECK(FLAGS)? / && !/\\/ { n++ } /^unaligned_at:/ { printf "%d %d %d\n", n + 1, n + 2, n + 3; exit }' \
    Guests/aarch64/a64_checks.S
}

status=0 compared=0
for source in Guests/aarch64/*.S; do
  guest=$(basename "$source" .S)
  kernel="$work/guests/$guest.elf"
  cpus=$(cpus_of "$source")
  set +e
  timeout 60 "$hyperstep" run --kernel "$kernel" --cpus "$cpus" --timeout 50 >"$work/$guest.hyperstep" 2>&1
  ours=$?
  timeout 60 qemu-system-aarch64 -M virt -cpu cortex-a57 -smp "$cpus" -m 128 -display none -nodefaults \
    -serial stdio -semihosting -kernel "$kernel" </dev/null >"$work/$guest.qemu" 2>&1
  theirs=$?
  set -e
  if [ "$guest" = a64_bad ]; then
    echo "$guest: not compared (Hyperstep's error paths): hyperstep exit $ours: $(head -c 200 "$work/$guest.hyperstep")"
    continue
  fi
  compared=$((compared + 1))
  if [ "$ours" = "$theirs" ] && cmp -s "$work/$guest.hyperstep" "$work/$guest.qemu"; then
    echo "$guest: same output and exit status ($ours)"
    continue
  fi
  if [ "$guest" = a64_checks ]; then
    expected=$(for n in $(unaligned_checks); do printf 'FAIL %016x\n' "$n"; done)
    got=$(grep -o '^FAIL [0-9a-f]*' "$work/$guest.qemu" || true)
    if [ "$ours" = 0 ] && [ "$got" = "$expected" ] && [ "$theirs" = 3 ]; then
      echo "$guest: same except QEMU's known departure (no alignment fault on Device memory with the MMU off)"
      continue
    fi
  fi
  echo "$guest: DIFFERENT (hyperstep exit $ours, qemu exit $theirs)"
  diff "$work/$guest.hyperstep" "$work/$guest.qemu" || true
  status=1
done
echo "aarch64-vs-qemu: $compared guests compared"
scripts/aarch64-pcs-vs-qemu.sh --cap "$cap" --hyperstep "$hyperstep" --elf-dir "$work/guests" || status=1
exit $status
