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
exec swift test "$@"
