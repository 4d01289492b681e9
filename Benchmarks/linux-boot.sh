#!/usr/bin/env bash
# Debian's stock kernel booting to its /init marker, on Hyperstep's own x86-64 CPU against
# QEMU's TCG, with the same bzImage, initrd, command line and memory, alternating in one
# invocation so that the machine's noise hits all alike (issue 13):
#
#   hyperstep run --accel emu             the default: Hyperstep unpacks the kernel on the
#                                         host and enters the vmlinux (no BIOS, no decompressor)
#   hyperstep run --accel emu, HYPERSTEP_JIT=0   the same without the translation tier, for information
#   qemu-system-x86_64 -accel tcg         SeaBIOS, the kernel's own decompressor, then the kernel
#
# Each run's time is taken when the fixture's /init prints its marker
# ("HYPERSTEP-INIT: /init is running"); the runs then power off (hyperstep.run=poweroff).
# Hyperstep's instruction count at the end comes from `run --stats` (the few thousand
# instructions between the marker and power-off are counted too). Figures are medians of
# ROUNDS runs (default 3); the ratio is QEMU's time over Hyperstep's (above 1: Hyperstep is
# faster). Target: Hyperstep no slower than QEMU TCG end to end.
#
#   Benchmarks/linux-boot.sh [--rounds N] [--cpus N] [--cmdline-extra "..."]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 cpus=1 extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=${2:?"--rounds needs a number"}; shift ;;
    --cpus) cpus=${2:?"--cpus needs a number"}; shift ;;
    --cmdline-extra) extra=${2?"--cmdline-extra needs a string"}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "linux-boot.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
for value in "$rounds" "$cpus"; do
  case "$value" in '' | *[!0-9]*) echo "linux-boot.sh: '$value' is not a whole number" >&2; exit 2 ;; esac
done
[ "$rounds" -ge 1 ] && [ "$cpus" -ge 1 ] || { echo "linux-boot.sh: --rounds and --cpus must be at least 1" >&2; exit 2; }

fixture=$(scripts/linux-fixture.sh)
if ! command -v qemu-system-x86_64 > /dev/null; then
  echo "linux-boot.sh: installing qemu-system-x86 (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 > /dev/null
fi
swift build -c release --product hyperstep > /dev/null
hyperstep=.build/release/hyperstep
cmdline="console=ttyS0 hyperstep.run=poweroff $extra"
echo "linux-boot.sh: $(cat "$fixture/version"), --cpus $cpus, --memory 512M, command line: $cmdline"

# Runs a command, prints "SECONDS_TO_MARKER SECONDS_TO_EXIT EXIT_STATUS" and keeps its stderr
# in the file named by the first argument.
timed() {
  python3 - "$@" << 'PY'
import os, subprocess, sys, time
errors, command = sys.argv[1], sys.argv[2:]
start = time.monotonic()
marker_at = None
with open(errors, "wb") as err:
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    seen = b""
    while True:
        chunk = child.stdout.read1(65536)
        if not chunk:
            break
        seen = (seen + chunk)[-4096:]
        if marker_at is None and b"HYPERSTEP-INIT: /init is running" in seen:
            marker_at = time.monotonic() - start
    child.wait()
end = time.monotonic() - start
print("%.3f %.3f %d" % (marker_at if marker_at is not None else -1, end, child.returncode))
PY
}

declare -a jit plain qemu instructions
for round in $(seq 1 "$rounds"); do
  read -r marker total status < <(timed /tmp/linux-boot-h.err "$hyperstep" run --accel emu --stats --cpus "$cpus" \
    --memory 512M --rtc-base 2026-01-01T00:00:00 --kernel "$fixture/vmlinuz" --initrd "$fixture/initrd.gz" --cmdline "$cmdline")
  [ "$status" = 0 ] && [ "$marker" != -1 ] || { echo "linux-boot.sh: Hyperstep's boot failed (status $status):"; tail -3 /tmp/linux-boot-h.err; exit 1; }
  jit+=("$marker")
  instructions+=("$(sed -n 's/.*stats: \([0-9]*\) instructions.*/\1/p' /tmp/linux-boot-h.err)")
  read -r marker total status < <(HYPERSTEP_JIT=0 timed /tmp/linux-boot-p.err "$hyperstep" run --accel emu --cpus "$cpus" \
    --memory 512M --rtc-base 2026-01-01T00:00:00 --kernel "$fixture/vmlinuz" --initrd "$fixture/initrd.gz" --cmdline "$cmdline")
  [ "$status" = 0 ] && [ "$marker" != -1 ] || { echo "linux-boot.sh: Hyperstep's boot (JIT off) failed (status $status)"; exit 1; }
  plain+=("$marker")
  read -r marker total status < <(timed /tmp/linux-boot-q.err qemu-system-x86_64 -accel tcg -smp "$cpus" -m 512M \
    -nographic -no-reboot -kernel "$fixture/vmlinuz" -initrd "$fixture/initrd.gz" -append "$cmdline")
  [ "$marker" != -1 ] || { echo "linux-boot.sh: QEMU's boot never printed the marker (status $status)"; tail -3 /tmp/linux-boot-q.err; exit 1; }
  qemu+=("$marker")
  echo "round $round: hyperstep ${jit[-1]} s, hyperstep without JIT ${plain[-1]} s, qemu tcg ${qemu[-1]} s (to the marker)"
done
rm -f /tmp/linux-boot-h.err /tmp/linux-boot-p.err /tmp/linux-boot-q.err

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
j=$(median "${jit[@]}"); p=$(median "${plain[@]}"); q=$(median "${qemu[@]}"); n=$(median "${instructions[@]}")
awk -v j="$j" -v p="$p" -v q="$q" -v n="$n" 'BEGIN {
  printf "\nto the /init marker (median of the rounds):\n"
  printf "  hyperstep --accel emu        %7.2f s   %5.2fx QEMU TCG   (%d instructions to power-off, %.0f MIPS)\n", j, q / j, n, n / j / 1e6
  printf "  hyperstep, HYPERSTEP_JIT=0   %7.2f s   %5.2fx QEMU TCG\n", p, q / p
  printf "  qemu-system-x86_64 -accel tcg %6.2f s   (BIOS and the kernel'"'"'s own decompressor included)\n", q
  printf "target: Hyperstep no slower than QEMU TCG end to end: %s\n", (q / j >= 1) ? "met" : "not met"
}'
