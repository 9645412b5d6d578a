#!/bin/sh
# The initramfs's /init (busybox). Debian builds virtio, 9p and overlayfs as
# modules: load them, mount the host's root (shared read-only over 9p) under a
# tmpfs overlay, mount what pyrunq and its tests use, and hand over to the
# runner's job script. $1 (after "--" on the kernel command line): the job
# directory on the host. Mounting here, with busybox, and not from the host's
# root: each dynamically linked host binary costs ~0.15 s to start under TCG.
mount -t proc proc /proc
mount -t devtmpfs dev /dev
while read -r ko; do insmod "/modules/$ko" || exit 1; done </modules/order
# cache=loose: the host's tree is taken as frozen for the guest's short life
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=262144 hostroot /lower || exit 1
mount -t tmpfs -o mode=755 rw /rw
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || exit 1
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
exec switch_root /newroot /bin/sh "$1/job.sh"
