#!/usr/bin/env bash
# Usage: scripts/end-test-processes.sh PIDFILE
#
# Ends, with SIGKILL, the processes the tests started that are still running: those listed in
# PIDFILE, one "PID STARTTIME" line each, appended by Tests/CLITests/ChildProcess.swift for
# every program it spawns while HYPERSTEP_TEST_PIDS names the file (scripts/test.sh sets it).
#
# Only these, by pid: CI machines are shared, and a pattern over command lines would also end
# another checkout's or another user's hyperstep. And only while /proc/PID/stat still shows
# the start time recorded at spawn (field 22, clock ticks after boot): a process that ended
# may have left its pid to someone else's.
set -uo pipefail
pids_file=${1:?usage: $0 PIDFILE}
[ -r "$pids_file" ] || exit 0
while read -r pid start; do
  [[ $pid =~ ^[0-9]+$ && $start =~ ^[0-9]+$ ]] || continue
  # The shell's own read, not a process per line: most of these pids are long gone.
  { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || continue
  # Field 2 is the command name in parentheses and may hold spaces or ')': count the fields
  # after the last ") ". fields[0] is then field 3 (the state), fields[19] field 22.
  read -ra fields <<<"${stat##*) }"
  [ "${fields[19]:-}" = "$start" ] || continue
  # A zombie is dead already (its parent has not reaped it) and holds no pipe.
  [ "${fields[0]}" != Z ] || continue
  command_line=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
  if kill -KILL "$pid" 2>/dev/null; then
    echo "test.sh: ended process $pid that a test left running: $command_line"
  fi
done <"$pids_file"
exit 0
