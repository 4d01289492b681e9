#!/usr/bin/env bash
# Fuzzes the GDB remote packet decoder and command dispatcher with libFuzzer (Swift's
# -sanitize=fuzzer, with AddressSanitizer) for a bounded time.
#
#   scripts/fuzz-gdbremote.sh [SECONDS]     default 60; exits non-zero on a crash
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
work=.build/fuzz
mkdir -p "$work/corpus"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name GDBRemoteFuzz \
  Sources/GDBRemote/*.swift Fuzz/GDBRemoteFuzz.swift -o "$work/gdbremote-fuzz"
# Seeds: one of each packet family, framed as a client sends them.
seed() { printf '%s' "$2" > "$work/corpus/$1"; }
seed supported '$qSupported:swbreak+#d6'
seed registers '+$g#67'
seed memory '$m100,10#f3$M100,2:abcd#2a'
seed binary '$X100,1:a#f0'
seed breakpoint '$Z0,1000,1#4d$z0,1000,1#8d'
seed vcont '$vCont;s:1;c#a0'
seed xfer '$qXfer:features:read:target.xml:0,ffb#79'
seed escape '$}#}]#00'
seed biglength '$m0,7fffffffffffffff#fa'  # lengths near Int.max (an overflow once trapped here)
seed vcontempty '$vCont;:#7f'  # an action with no verb (a trap once)
# LLDB's extensions: thread suffixes on register packets, and the queries it opens with.
seed suffix '$QThreadSuffixSupported#e4$p10;thread:1;#2a$P10=0000000000000000;thread:2;#48$g;thread:1;#c0'
seed lldbqueries '$QEnableErrorStrings#8c$QListThreadsInStopReply#21$qHostInfo#9b$qProcessInfo#dc$qWatchpointSupportInfo:#55$k#6b'
"$work/gdbremote-fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 15
