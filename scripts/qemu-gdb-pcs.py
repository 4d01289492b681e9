# gdb-multiarch's Python: records the PC at every instruction boundary of a guest under
# qemu-system-aarch64's gdbstub, one `stepi` at a time, for scripts/aarch64-pcs-vs-qemu.sh.
# PCS_CAP: the most PCs to record; PCS_OUT: where, one hexadecimal PC a line (no 0x).
# The run ends early when the guest does (QEMU exits on a semihosting exit or PSCI SYSTEM_OFF).
# Interrupts and timers run while stepping (Qqemu.sstep=0x1: QEMU's default masks both, which
# would keep a timer guest in WFI forever).
#
# Each step is the remote protocol's own `s` packet, not gdb's `stepi`: on AArch64 gdb steps
# an LDXR..STXR sequence as one (it plants a breakpoint after the STXR, so that the step's
# exception return cannot clear the exclusive monitor), which would hide those instructions.
import os

import gdb

cap = int(os.environ["PCS_CAP"])
gdb.execute("set pagination off")
gdb.execute("maintenance packet Qqemu.sstep=0x1", to_string=True)
with open(os.environ["PCS_OUT"], "w") as out:
    for _ in range(cap):
        try:
            pc = int(gdb.parse_and_eval("$pc")) & 0xFFFFFFFFFFFFFFFF
        except gdb.error:
            break
        out.write("%x\n" % pc)
        try:
            reply = gdb.execute("maintenance packet s", to_string=True)
        except gdb.error:
            break
        # "received: "T05..."" for a stop; W or X: the guest ended.
        if 'received: "T' not in reply and 'received: "S' not in reply:
            break
        gdb.execute("maintenance flush register-cache", to_string=True)
