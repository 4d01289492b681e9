#!/usr/bin/env bash
# Fuzzes the kernel loaders (ELF, Multiboot, bzImage, flat binaries, placement in RAM) with
# libFuzzer (Swift's -sanitize=fuzzer, with AddressSanitizer) for a bounded time. The seeds
# are the test guests the package builds, so run `swift build` first for a useful corpus.
#
#   scripts/fuzz-loaders.sh [SECONDS]     default 60; exits non-zero on a crash
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
work=.build/fuzz-loaders
mkdir -p "$work/corpus"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name LoaderFuzz \
  Sources/Machine/Loaders/*.swift Sources/Machine/X86_64/BootLayout.swift Fuzz/LoaderFuzz.swift \
  Fuzz/PayloadDecompressorStandIn.swift \
  -o "$work/loader-fuzz"
# Seeds: the built guests (ELF32, ELF64, Multiboot, flat binaries), when there are any.
for guest in .build/plugins/outputs/*/*/destination/GuestBuilder/build/*.{elf,bin}; do
  [ -f "$guest" ] && cp "$guest" "$work/corpus/"
done
printf '\x7fELF' > "$work/corpus/magic"
"$work/loader-fuzz" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 15
