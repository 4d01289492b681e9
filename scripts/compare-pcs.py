#!/usr/bin/env python3
"""Compares two per-instruction PC sequences of one AArch64 guest (scripts/aarch64-pcs-vs-qemu.sh).

compare-pcs.py NAME HYPERSTEP_PCS QEMU_PCS ELF OBJDUMP [--until-interrupt] [--known SYMBOL] [--collapsed N] [--cap N]

Each sequence is one PC a line: hexadecimal (a leading 0x and text after the number are
ignored), or a `hyperstep trace --format jsonl` line (its "rip"; the line of the machine's end
is left out: no instruction runs at that PC). The PC at every instruction boundary.
Prints one line saying how many instructions were compared and whether the sequences are the
same; at the first difference, its index, both PCs and the guest's listing around the
instruction both executed last. --until-interrupt: compare only up to the first IRQ or FIQ
vector entry (VBAR = the `vectors` symbol) in either sequence, where real time (QEMU) and
instruction counts (Hyperstep) put timer interrupts at different instructions. --known SYMBOL:
a first difference right after the instruction at SYMBOL is a departure the README explains;
the comparison goes on from where the two runs meet again (the fewest instructions of both
after which 256 PCs agree, or all that are left), and says how many instructions each took apart. --collapsed N: exactly N exception entries are taken by QEMU's gdb step together
with the instruction before them (an interrupt waking a WFI, the guest's own Software Step or
breakpoint exception on the next instruction), where Hyperstep stops at the boundary between
first; each such boundary is dropped from Hyperstep's sequence, and a count other than N is a
difference. Exit status 0 when the same (or known), 1 when different, 2 for bad input.
"""
import json
import re
import subprocess
import sys


def read_pcs(path):
    pcs = []
    with open(path) as f:
        for line in f:
            if line.startswith("{"):
                stop = json.loads(line)
                if stop.get("event") != "exit":
                    pcs.append(int(stop["rip"], 16))
                continue
            field = line.split(None, 1)[0] if line.strip() else ""
            if field:
                pcs.append(int(field, 16))
    return pcs


def symbols(objdump, elf):
    table = {}
    for line in subprocess.run([objdump, "-t", elf], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and re.fullmatch(r"[0-9a-f]{16}", parts[0]):
            table[parts[-1]] = int(parts[0], 16)
    return table


def listing(objdump, elf):
    lines = {}
    for line in subprocess.run([objdump, "-d", "--no-show-raw-insn", elf], capture_output=True, text=True).stdout.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s*(.*)", line)
        if m:
            lines[int(m.group(1), 16)] = m.group(2).strip()
    return lines


def main(argv):
    if len(argv) < 6:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    name, ours_path, theirs_path, elf, objdump = argv[1:6]
    options = argv[6:]
    until_interrupt = "--until-interrupt" in options
    known = options[options.index("--known") + 1] if "--known" in options else None
    allowed = int(options[options.index("--collapsed") + 1]) if "--collapsed" in options else 0
    cap = int(options[options.index("--cap") + 1]) if "--cap" in options else None
    try:
        ours, theirs = read_pcs(ours_path), read_pcs(theirs_path)
    except (OSError, ValueError) as error:
        print(f"{name}: cannot read the PC sequences: {error}", file=sys.stderr)
        return 2
    table = symbols(objdump, elf)
    note = ""
    cut_at_cap = cap is not None and (len(ours) >= cap or len(theirs) >= cap)
    if until_interrupt and "vectors" in table:
        irq_entries = {table["vectors"] + offset for offset in (0x80, 0x100, 0x280, 0x300, 0x480, 0x500, 0x680, 0x700)}
        cut = min([i for i, pc in enumerate(ours) if pc in irq_entries] + [i for i, pc in enumerate(theirs) if pc in irq_entries] + [max(len(ours), len(theirs))])
        if cut < max(len(ours), len(theirs)):
            note = f" (up to the first interrupt, at instruction {cut})"
        ours, theirs = ours[:cut], theirs[:cut]
    # Exception entries QEMU's gdb step takes together with the instruction before them (the
    # guest's own Software Step exception, an interrupt waking a WFI): Hyperstep stops at the
    # boundary between first. Such a boundary is dropped from Hyperstep's sequence and counted.
    vectors = {table["vectors"] + 0x80 * n for n in range(16)} if "vectors" in table else set()
    collapsed = []
    index = 0
    while allowed and index < len(ours) and index < len(theirs):
        if ours[index] != theirs[index] and index + 1 < len(ours) and ours[index + 1] == theirs[index] and theirs[index] in vectors:
            collapsed.append(ours[index])
            del ours[index]
        index += 1
    if allowed and len(collapsed) != allowed:
        where = ", ".join(f"0x{pc:x}" for pc in collapsed)
        print(f"{name}: DIFFERENT: {len(collapsed)} boundaries before an exception entry QEMU steps into at once ({where}), not {allowed}")
        return 1
    if collapsed:
        note += f"; {len(collapsed)} boundaries before an exception entry that QEMU's step takes with the instruction before (README)"
    # Two positions: after a known departure each sequence goes its own way for a while
    # (Hyperstep through the fault's handler, QEMU through what the guest does without it);
    # `realign` finds where they meet again.
    i = j = same = 0
    departure = None
    while i < len(ours) and j < len(theirs):
        if ours[i] == theirs[j]:
            i, j, same = i + 1, j + 1, same + 1
            continue
        previous = ours[i - 1] if i > 0 else None
        if known and departure is None and previous is not None and previous == table.get(known):
            met = realign(ours, theirs, i, j)
            if met is None:
                print(f"{name}: {same} instructions the same, then QEMU's known departure after {known} (README), and the runs do not meet again")
                return 0
            departure = (met[0] - i, met[1] - j)
            i, j = met
            continue
        print(f"{name}: DIFFERENT at instruction {same}: hyperstep 0x{ours[i]:x}, qemu 0x{theirs[j]:x}")
        code = listing(objdump, elf)
        if previous is not None:
            print(f"  both executed last 0x{previous:x}; the listing around it:")
            for address in range(previous - 12, previous + 16, 4):
                if address in code:
                    mark = ">" if address == previous else " "
                    print(f"  {mark} {address:x}: {code[address]}")
        for who, pc in (("hyperstep", ours[i]), ("qemu", theirs[j])):
            print(f"  {who} went on at 0x{pc:x}: {code.get(pc, '(not in the listing)')}")
        return 1
    if (i < len(ours) or j < len(theirs)) and not cut_at_cap and not note.startswith(" (up to"):
        shorter = "hyperstep" if i == len(ours) else "qemu"
        print(f"{name}: the first {same} instructions the same, but {shorter}'s sequence ends there ({len(ours)} against {len(theirs)})")
        return 1
    if departure:
        note += f"; apart from QEMU's known departure after {known} (README): {departure[0]} instructions of Hyperstep's there against {departure[1]} of QEMU's"
    print(f"{name}: {same} instructions compared, the same PC sequence{note}")
    return 0


def realign(ours, theirs, i, j, reach=5000, window=256):
    """The nearest positions (fewest instructions skipped in all) from which the sequences agree
    for `window` instructions (or to the end of the shorter one), within `reach` of i and j."""
    positions = {}
    for b in range(j, min(len(theirs), j + reach)):
        positions.setdefault(theirs[b], []).append(b)
    best = None
    for a in range(i, min(len(ours), i + reach)):
        if best is not None and a - i >= best[0] + best[1] - i - j:
            break
        for b in positions.get(ours[a], []):
            if best is not None and (a - i) + (b - j) >= (best[0] - i) + (best[1] - j):
                break
            span = min(window, len(ours) - a, len(theirs) - b)
            if span >= 8 and ours[a:a + span] == theirs[b:b + span]:
                best = (a, b)
                break
    return best


if __name__ == "__main__":
    sys.exit(main(sys.argv))
