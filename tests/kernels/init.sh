#!/bin/sh
# The initramfs's /init (busybox). Debian builds virtio, 9p and overlayfs as
# modules: load them, mount the host's root (shared read-only over 9p), build
# the guest's root from it (tmpfs overlays), mount what pyrunq and its tests
# use, and hand over to the runner's job script. The arguments (after "--" on
# the kernel command line): the job directory on the host, then the overlays
# as MOUNTPOINT=LOWERDIRS, "/" first: "/=/lower" for the host's own root; an
# arm64 guest's root is a directory of the host's, with the checkout and the
# job directory shown at their own paths. Mounting here, with busybox, and not
# from the host's root: each dynamically linked binary costs ~0.15 s to start
# under TCG.
mount -t proc proc /proc
mount -t devtmpfs dev /dev
while read -r ko; do insmod "/modules/$ko" || exit 1; done </modules/order
# cache=loose: the host's tree is taken as frozen for the guest's short life
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=262144 hostroot /lower || exit 1
mount -t tmpfs -o mode=755 rw /rw
job=$1
shift
n=0
for spec in "$@"; do
    n=$((n + 1))
    mkdir -p "/rw/$n/upper" "/rw/$n/work" "/newroot${spec%%=*}"
    mount -t overlay -o "lowerdir=${spec#*=},upperdir=/rw/$n/upper,workdir=/rw/$n/work" overlay \
        "/newroot${spec%%=*}" || exit 1
done
cd /newroot || exit 1
umount /proc
mount --move /dev dev
mount -t proc proc proc
mount -t sysfs sysfs sys                          # /sys/kernel/btf comes with it
mount -t tracefs tracefs sys/kernel/tracing
mount -t bpf bpf sys/fs/bpf
mount -t cgroup2 cgroup2 sys/fs/cgroup
mkdir -p dev/shm dev/pts
mount -t tmpfs tmpfs dev/shm
mount -t devpts devpts dev/pts
mount -t tmpfs tmpfs run                          # the host's would say systemd runs
exec switch_root /newroot /bin/sh "$job/job.sh"
