#!/bin/busybox sh
# /init of Hyperstep's Linux test initramfs (scripts/linux-fixture.sh builds it).
# It prints a marker the tests and benchmarks wait for, then does what the kernel command
# line asks:
#   hyperstep.run=writes   run /bin/hs-writes (exactly 3 write system calls, see writes.S),
#                          then power off
#   hyperstep.run=poweroff power off at once
#   (nothing)              busybox init with a shell on the console (respawned when it
#                          exits); `poweroff`, `reboot`, `poweroff -f` and `reboot -f` end
#                          the machine (busybox init turns the first two into the last two)
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
# busybox init as PID 1, so that `poweroff` and `reboot` (signals to PID 1) work; its shell
# gets the console as controlling terminal through cttyhack, for job control and Ctrl-C.
mkdir -p /etc
cat > /etc/inittab <<'TAB'
::respawn:/bin/cttyhack /bin/sh
::shutdown:/bin/sync
TAB
exec /bin/init
