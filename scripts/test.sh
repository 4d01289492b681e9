#!/usr/bin/env bash
# The test command: installs what the tests need that the Swift toolchain does not bring
# (Debian's gdb, for the GDB-server tests), then runs the whole suite with `swift test`.
# The guests under Guests/ are built by the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v gdb >/dev/null 2>&1; then
  echo "test.sh: installing gdb (Debian package)"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gdb >/dev/null
fi
# A hyperstep process a failed test left behind must not outlive the run: it would hold the
# caller's output pipe open (CI waits for it to close).
status=0
swift test "$@" || status=$?
pkill -KILL -f "$PWD/.build/.*/hyperstep (run|trace|debug|monitor) " 2>/dev/null || true
exit "$status"
