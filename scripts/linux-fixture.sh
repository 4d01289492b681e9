#!/usr/bin/env bash
# The Debian Linux fixture for Hyperstep's Linux tests and benchmarks (issue 13): Debian 12's
# stock kernel, a busybox initramfs and the kernel's symbols, in a cache outside the repo.
#
#   scripts/linux-fixture.sh            fetch and build what is missing; print the cache dir
#   scripts/linux-fixture.sh --check    print the cache dir if the fixture is complete, else exit 1
#
# The cache is $HYPERSTEP_FIXTURE_DIR, or ~/.cache/hyperstep/linux. It holds:
#   vmlinuz         the kernel of the `linux-image-amd64` metapackage's current dependency
#                   (linux-image-6.1.0-N-amd64), from `apt-get download` + `dpkg -x`
#   config          its build configuration (CONFIG_KERNEL_XZ, ...)
#   initrd.gz       busybox-static, /init (linux-fixture/init.sh) and /bin/hs-writes
#                   (linux-fixture/writes.S), made by linux-fixture/make-initramfs.py
#   System.map      the kernel's symbols. Debian's own System.map is a stub pointing at the
#                   -dbg package (an 858 MB download), so the symbols come from the kernel's
#                   embedded kallsyms table, recovered by vmlinux-to-elf (PyPI, installed
#                   into a virtual environment inside the cache) and listed by llvm-nm. They
#                   hold for a boot with `nokaslr`, where the kernel runs at its link address.
#   vmlinux-symbols.elf  vmlinux-to-elf's output: the kernel as an ELF with those symbols,
#                   for gdb (`file vmlinux-symbols.elf`) and `--symbols`
#   version         the package name and version, for reports
# Everything is deterministic for one kernel version: a new Debian point release changes
# the version, and the tests take their expected values from the symbols, not from constants.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${HYPERSTEP_FIXTURE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hyperstep/linux}
check_only=no
case "${1:-}" in
  --check) check_only=yes ;;
  '') ;;
  *) echo "linux-fixture.sh: unknown argument '$1' (use --check or nothing)" >&2; exit 2 ;;
esac

complete() {
  for file in vmlinuz config initrd.gz System.map vmlinux-symbols.elf version; do
    [ -s "$cache/$file" ] || return 1
  done
}
if complete; then echo "$cache"; exit 0; fi
if [ "$check_only" = yes ]; then exit 1; fi

log() { echo "linux-fixture.sh: $*" >&2; }
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The kernel package the metapackage currently depends on.
package=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1 || true)
if [ -z "$package" ]; then
  log "refreshing the package lists (apt-get update)"
  apt-get update -qq >&2 || { log "apt-get update failed: cannot fetch the kernel"; exit 1; }
  package=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1 || true)
fi
if [ -z "$package" ]; then log "no linux-image-*-amd64 package is known to apt"; exit 1; fi

log "downloading $package and busybox-static"
(cd "$work" && apt-get download -q "$package" busybox-static >&2 2>/dev/null) || {
  log "apt-get download $package busybox-static failed"
  exit 1
}
dpkg -x "$work"/linux-image-*.deb "$work/kernel"
dpkg -x "$work"/busybox-static_*.deb "$work/busybox"
cp "$work"/kernel/boot/vmlinuz-* "$cache/vmlinuz.tmp" && mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
cp "$work"/kernel/boot/config-* "$cache/config"

# /bin/hs-writes, assembled and linked by the toolchain's clang and ld.lld (no libc).
toolchain=$(dirname "$(readlink -f "$(command -v swift)")")
"$toolchain/clang" --target=x86_64-linux-gnu -c "$here/linux-fixture/writes.S" -o "$work/writes.o"
"$toolchain/ld.lld" -static -e _start "$work/writes.o" -o "$work/hs-writes"
python3 "$here/linux-fixture/make-initramfs.py" "$cache/initrd.gz.tmp" \
  bin/busybox="$work/busybox/bin/busybox" init="$here/linux-fixture/init.sh" bin/hs-writes="$work/hs-writes"
mv "$cache/initrd.gz.tmp" "$cache/initrd.gz"

if [ ! -x "$cache/venv/bin/vmlinux-to-elf" ]; then
  log "installing vmlinux-to-elf (PyPI) into $cache/venv"
  python3 -m venv "$cache/venv" >&2
  "$cache/venv/bin/pip" install -q vmlinux-to-elf >&2 || { log "pip install vmlinux-to-elf failed"; exit 1; }
fi
log "recovering the kernel's symbols from its kallsyms table"
"$cache/venv/bin/vmlinux-to-elf" "$cache/vmlinuz" "$work/vmlinux.elf" > "$work/vmlinux-to-elf.log" 2>&1 || {
  log "vmlinux-to-elf failed:"; tail -n 5 "$work/vmlinux-to-elf.log" >&2; exit 1
}
"$toolchain/llvm-nm" -n --defined-only "$work/vmlinux.elf" > "$cache/System.map.tmp"
mv "$cache/System.map.tmp" "$cache/System.map"
mv "$work/vmlinux.elf" "$cache/vmlinux-symbols.elf"
version=$(dpkg-deb -f "$work"/linux-image-*.deb Version)
echo "$package $version" > "$cache/version"
complete || { log "the fixture is incomplete after building it"; exit 1; }
echo "$cache"
