#!/usr/bin/env bash
# Checks, by hand (it is not part of the suite), that scripts/test.sh ends the processes the
# tests left running and nothing else, and that scripts/end-test-processes.sh never ends a
# process whose pid is listed but whose start time differs (a reused pid). Needs /dev/kvm.
#
# A decoy, started here and not by the tests, has a command line the old cleanup would have
# ended: it sent SIGKILL to every process matching "$PWD/.build/.*/hyperstep (run|trace|debug|monitor) ".
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests >/dev/null
bin=$(swift build --show-bin-path)
work=$(mktemp -d)
failed=0
fail() {
  echo "check: FAILED: $*"
  failed=1
}
alive() { # alive PID: running, not a zombie
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -ra fields <<<"${stat##*) }"
  [ "${fields[0]}" != Z ]
}
start_time() {
  local stat
  read -r stat <"/proc/$1/stat"
  read -ra fields <<<"${stat##*) }"
  echo "${fields[19]}"
}

bash -c 'exec -a "$0 debug --decoy-not-started-by-the-tests" sleep 600' "$bin/hyperstep" &
decoy=$!
victim=
cleanup() {
  kill -KILL "$decoy" ${victim:+"$victim"} 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
sleep 0.2
command_line=$(tr '\0' ' ' <"/proc/$decoy/cmdline")
echo "check: decoy $decoy: $command_line"
if ! grep -Eq "$PWD/.build/.*/hyperstep (run|trace|debug|monitor) " <<<"$command_line"; then
  fail "the decoy's command line would not have matched the old pattern"
fi

# 1. The pid check alone: a listed pid with another start time (as after reuse) is left
#    alone, and malformed lines are skipped; a listed pid with its own start time is ended.
sleep 600 &
victim=$!
sleep 0.2
printf '%s\n' "$decoy 1" "$decoy" "garbage line" "$victim $(start_time "$victim")" >"$work/pids"
scripts/end-test-processes.sh "$work/pids"
alive "$decoy" || fail "end-test-processes.sh ended a process whose start time did not match"
wait "$victim" 2>/dev/null && fail "the listed process was not killed" || echo "check: listed process $victim ended (status $?)"
victim=

# 2. End to end: a test leaves `hyperstep debug` running when the test process exits;
#    scripts/test.sh must end it, and only it.
HYPERSTEP_TEST_LEAVE_CHILD="$work/leftover" scripts/test.sh --skip-build --filter LeftoverChildTests \
  >"$work/test.log" 2>&1 || { cat "$work/test.log"; fail "scripts/test.sh failed"; }
grep -E "ended process|leaveAServerRunning" "$work/test.log" || true
leftover=$(sed -n 1p "$work/leftover" 2>/dev/null || true)
if [ -z "$leftover" ]; then
  fail "the test left no process (did it run? is /dev/kvm there?)"
else
  # Its parent (init, or a subreaper) reaps it once killed; a zombie counts as ended.
  for _ in $(seq 50); do alive "$leftover" || break; sleep 0.1; done
  if alive "$leftover"; then fail "the leftover hyperstep $leftover is still running"; else
    echo "check: the leftover hyperstep $leftover was ended"
  fi
  rm -f "$(sed -n 2p "$work/leftover")"
fi
alive "$decoy" && echo "check: the decoy $decoy is still running" || fail "the decoy was ended"
[ "$failed" = 0 ] && echo "check: passed"
exit "$failed"
