#!/usr/bin/env bash
# The test command: installs what the tests need that the Swift toolchain does not bring
# (Debian's gdb, gdb-multiarch and lldb-16 for the GDB-server tests, qemu-user and
# qemu-system-arm as the AArch64 differential tests' references) and the Linux fixture
# (scripts/linux-fixture.sh), then runs the whole suite with `swift test`. The guests under
# Guests/ are built by the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each Debian package installs a program of its own name in /usr/bin, where the tests look
# for it (Tests/CLITests/GDBTests.swift for gdb, AArch64GDBTests.swift for gdb-multiarch,
# LLDBTests.swift for lldb-16). The toolchain's
# own lldb is no substitute: it links a libpython3.10 that Debian 12 lacks, and does not start.
missing=""
for package in gdb gdb-multiarch lldb-16; do
  if [ ! -x "/usr/bin/$package" ]; then missing="$missing $package"; fi
done
# qemu-aarch64, the reference AArch64DifferentialTests compares Hyperstep's AArch64 CPU with,
# and qemu-system-aarch64 (9 MB of package), whose PC sequences it compares whole guests with.
if [ ! -x /usr/bin/qemu-aarch64 ]; then missing="$missing qemu-user"; fi
if [ ! -x /usr/bin/qemu-system-aarch64 ]; then missing="$missing qemu-system-arm"; fi
if [ -n "$missing" ]; then
  echo "test.sh: installing$missing (Debian packages)"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
# Debian's stock kernel, a busybox initramfs and the kernel's symbols for the Linux tests
# (Tests/CLITests/LinuxBootTests.swift), in a cache outside the repo (about 30 s the first
# time). If it cannot be fetched, those tests say so and do not run.
if ! scripts/linux-fixture.sh > /dev/null; then
  echo "test.sh: WARNING: the Linux fixture could not be fetched; the Linux tests will be SKIPPED"
fi
# The Linux tests boot a 2-billion-instruction kernel: they run the release build of
# hyperstep, as a user would (the debug build's interpreter is some 20 times slower).
swift build -c release --product hyperstep
# A hyperstep process a failed test left behind must not outlive the run: it would hold the
# caller's output pipe open (CI waits for it to close). CI machines are shared with other
# work, so only the processes these tests started are ended: the tests record each one's pid
# (and start time, to tell it from a later process given the same pid) in a fresh file, and
# scripts/end-test-processes.sh ends those still running, by pid.
pids_file=$(mktemp "${TMPDIR:-/tmp}/hyperstep-test-pids.XXXXXX")
end_test_processes() {
  scripts/end-test-processes.sh "$pids_file"
  rm -f "$pids_file"
}
trap end_test_processes EXIT
# Bash runs the EXIT trap on a signal only when the signal is trapped: an interrupted run
# (Ctrl-C, CI's timeout) cleans up too.
trap 'exit 130' INT
trap 'exit 143' TERM
export HYPERSTEP_TEST_PIDS="$pids_file"
status=0
swift test "$@" || status=$?
exit "$status"
