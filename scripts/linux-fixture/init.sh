#!/bin/busybox sh
# /init of Hyperstep's Linux test initramfs (scripts/linux-fixture.sh builds it).
# It prints a marker the tests and benchmarks wait for, then does what the kernel command
# line asks:
#   hyperstep.run=writes   run /bin/hs-writes (exactly 3 write system calls, see writes.S),
#                          then power off
#   hyperstep.run=poweroff power off at once
#   (nothing)              an interactive shell on the console; `poweroff` or `reboot -f`
#                          ends the machine
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "HYPERSTEP-INIT: /init is running"
case " $(cat /proc/cmdline) " in
  *" hyperstep.run=writes "*)
    /bin/hs-writes
    poweroff -f
    ;;
  *" hyperstep.run=poweroff "*)
    poweroff -f
    ;;
esac
# A shell with job control on the console (cttyhack gives it a controlling terminal).
exec setsid cttyhack sh
