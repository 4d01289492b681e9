#!/usr/bin/env python3
"""Writes a gzip-compressed initramfs (cpio "newc", the format the kernel unpacks) holding
the files named on the command line (busybox, /init, test programs; all executable) and the
directories /init mounts on.

    make-initramfs.py OUTPUT PATH=FILE...     e.g. bin/busybox=/tmp/busybox init=init.sh

A tiny writer of our own instead of cpio(1), which a fresh Debian machine may lack; the
format is documented in the kernel's Documentation/driver-api/early-userspace/buffer-format.rst:
a 110-byte ASCII header per entry (magic 070701, thirteen 8-digit hex fields), the name with
its NUL, padding to 4 bytes, the data, padding to 4 bytes, and a final "TRAILER!!!" entry.
Timestamps are 0 so that the archive, and a boot from it, are the same every time."""
import gzip
import stat
import sys


def entry(name: str, mode: int, data: bytes = b"", ino: int = 0, rdev: tuple = (0, 0)) -> bytes:
    encoded = name.encode() + b"\0"
    # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    out = header + encoded
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def main() -> int:
    if len(sys.argv) < 3 or any("=" not in item for item in sys.argv[2:]):
        print("usage: make-initramfs.py OUTPUT PATH=FILE...", file=sys.stderr)
        return 2
    output = sys.argv[1]
    files = []
    for item in sys.argv[2:]:
        path, source = item.split("=", 1)
        with open(source, "rb") as f:
            files.append((path.lstrip("/"), f.read()))
    archive = b""
    inode = 1
    for directory in ["bin", "dev", "proc", "sys", "tmp", "sbin", "usr", "usr/bin", "usr/sbin"]:
        archive += entry(directory, stat.S_IFDIR | 0o755, ino=inode)
        inode += 1
    # The console device node: the kernel opens /dev/console for init's stdio before any
    # devtmpfs is mounted, so it must exist in the archive (character device 5:1).
    archive += entry("dev/console", stat.S_IFCHR | 0o600, ino=inode, rdev=(5, 1))
    inode += 1
    for path, data in files:
        archive += entry(path, stat.S_IFREG | 0o755, data, ino=inode)
        inode += 1
    archive += entry("TRAILER!!!", 0)
    with open(output, "wb") as f:
        f.write(gzip.compress(archive, mtime=0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
