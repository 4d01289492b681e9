#!/usr/bin/env bash
# Watchpoints on KVM, against an unwatched run and against stepping. The tight-loop guest
# (300004 instructions) with an 8-byte watch on its own code, which it never reads or writes
# as data, so no hit is expected (the driver fails otherwise):
#   none      no watch
#   protect   write watchpoint, its page read-only to KVM (the guest at full speed)
#   step      write watchpoint, stepped and compared after every instruction (the only way
#             KVM watched before; it cannot see reads at all)
#   read      read watch, its page absent to KVM: the loop's code is on that page, so KVM
#             cannot fetch it and the interpreter twin runs it (the worst case: code and
#             watched data on one page)
#   access    read/write watch, likewise
#   read-emu  the read watch with the machine on the interpreter (what `rwatch` on KVM did
#             before: the machine moved there)
#   read-far  read/write watch on 8 bytes of RAM the guest never touches (that page absent
#             to KVM, the loop native): the cost of a watch away from the code
# Alternating rounds in one invocation, medians of the session's run time (start-up excluded).
#
#   Benchmarks/watch.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
case "$rounds" in '' | *[!0-9]* | 0) echo "watch.sh: ROUNDS must be a whole number of at least 1" >&2; exit 2 ;; esac
swift build -c release --product hyperstep-bench >/dev/null
bench="$(swift build -c release --show-bin-path)/hyperstep-bench"
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
modes=(none protect step read access read-emu read-far)
declare -A times
for ((round = 0; round < rounds; round++)); do
  for mode in "${modes[@]}"; do
    read -r hits ns _ < <("$bench" watch "$mode")
    [ "$hits" = 0 ] || { echo "watch.sh: the $mode run reported $hits watch hits; none expected" >&2; exit 1; }
    times[$mode]+="$ns "
  done
done
declare -A m
for mode in "${modes[@]}"; do m[$mode]=$(printf '%s\n' ${times[$mode]} | median); done
echo "watchpoints on KVM: tight_loop guest, 300004 instructions, $rounds alternating rounds, medians"
awk -v n="${m[none]}" -v p="${m[protect]}" -v s="${m[step]}" -v r="${m[read]}" -v a="${m[access]}" \
  -v e="${m[read-emu]}" -v f="${m[read-far]}" 'BEGIN {
  printf "  no watch                                     %10.3f ms\n", n / 1e6
  printf "  write, page write-protected                  %10.3f ms   (%6.2fx unwatched, %6.1fx faster than stepping)\n", p / 1e6, p / n, s / p
  printf "  write, stepping and comparing                %10.3f ms   (%6.2fx unwatched)\n", s / 1e6, s / n
  printf "  read, code page absent (interpreter twin)    %10.3f ms   (%6.2fx unwatched, %6.1fx faster than stepping, %5.2fx the machine on the interpreter)\n", r / 1e6, r / n, s / r, r / e
  printf "  access, code page absent (interpreter twin)  %10.3f ms   (%6.2fx unwatched, %6.1fx faster than stepping)\n", a / 1e6, a / n, s / a
  printf "  read, machine on the interpreter             %10.3f ms   (%6.2fx unwatched)\n", e / 1e6, e / n
  printf "  read/write, untouched page absent            %10.3f ms   (%6.2fx unwatched, %6.1fx faster than stepping)\n", f / 1e6, f / n, s / f
}'
