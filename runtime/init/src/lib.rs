//! `edge-init`: PID 1 of an edgeimg device.
//!
//! At boot it mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /run and /tmp, reads the device
//! config at [`edge_config::DEVICE_CONFIG_PATH`], sets the hostname, loads the drivers the
//! hardware asks for (each device's modalias matched against the image's `modules.alias`, as
//! udev/mdev coldplug does; see [`modules`]) and the modules the config lists, brings up
//! loopback, starts DHCP in the background (the server never waits for a network), mounts the
//! data partition (found by label and/or PARTUUID without udev), then starts the server as the
//! configured unprivileged user and keeps it running with exponential backoff. Devices that
//! appear later (a USB adapter, a hot-plugged card) get their drivers from the kernel's uevents.
//!
//! # Disk boots
//! With `root=PARTUUID=<uuid>` on the command line and `/` still the initramfs, init loads the
//! modules listed in `/etc/edgeimg/boot-modules` (the root's file system) and the drivers the
//! hardware asks for until that partition shows up, mounts it (squashfs, read-only) and execs
//! `/sbin/edge-init` there, which then boots as above.
//!
//! # Console protocol
//! One line per event, `EDGEIMG-<EVENT>` then `key=value` words, on stdout and /dev/console:
//! - `EDGEIMG-NET interface=eth0 address=10.0.2.15/24 gateway=10.0.2.2` each time a lease is
//!   put on the interface: at boot or whenever the link comes up (before or after READY).
//! - `EDGEIMG-DATA device=/dev/vda1 mountpoint=/data` once the data partition is mounted.
//! - `EDGEIMG-READY model=<names> listen=<addr> ms_since_boot=<n>` when
//!   `GET /v2/health/ready` answers 200 on loopback; again after every restart.
//! - `EDGEIMG-AUDIT server_pid=<n> uid=<n> ... root=ro console_shell=none` right after each
//!   READY: how the server really runs (see [`audit`]).
//! - `EDGEIMG-SERVER-EXIT status=<exit:N|signal:SIGx> ran_ms=<n> restart_in_ms=<n>`.
//! - `EDGEIMG-RESTARTED model=<names> restarts=<n> last_exit=<status> ms_since_boot=<n>`.
//! - `EDGEIMG-POWEROFF reason=<signal or flag> ms_since_boot=<n>` right before power-off.
//! - `EDGEIMG-ERROR <what> <why>` for every failure; init never exits.
//!
//! Readers should look for `EDGEIMG-` anywhere in a line: a kernel message or the debug
//! shell's prompt can share the console line.
//!
//! # Powering off
//! SIGTERM, SIGPWR, SIGINT (ctrl-alt-del: `RB_DISABLE_CAD` is set, so QEMU's
//! `sendkey ctrl-alt-delete` arrives as SIGINT), and SIGUSR1/SIGUSR2 (busybox `halt`/`poweroff`)
//! stop all processes (SIGTERM, 5 s grace, SIGKILL), sync, unmount the data partition and
//! `reboot(RB_POWER_OFF)`. So does the power button (QEMU `system_powerdown`), with
//! `reason=power-button`: init watches every `/dev/input/event*` device that reports
//! KEY_POWER (the ACPI `button` driver; needs the `button` and `evdev` modules) and, on arm64
//! without firmware, the device tree's `gpio-keys` power line through `/dev/gpiochipN`
//! (needs `gpio-pl061`; Alpine's `linux-virt` has no `gpio_keys` driver).
//!
//! # Steering from outside (kernel command line)
//! - `edgeimg.selftest=kill-server`: SIGKILL the server once after the first READY, to prove
//!   the restart path (RESTARTED then READY follow).
//! - `edgeimg.poweroff_after_ready=1`: power off at READY (after the selftest kill's second
//!   READY when both are given).
//! - `edgeimg.debug_shell=1` is refused with an `EDGEIMG-ERROR`: a root shell on the console
//!   comes only from the image's config (`init.debug_shell`, the recipe's
//!   `runtime.debug_shell`), never from whoever can edit the command line.
//!
//! # Device defaults
//! Without `init.debug_shell` nothing reads the console (the server's stdin is /dev/null).
//! The server runs as its own uid/gid, no supplementary groups, an empty capability bounding
//! set and `NO_NEW_PRIVS`. `/` is read-only once init has mounted what it needs (a disk boot's
//! squashfs root is read-only anyway; a kernel + initramfs boot's root is remounted so); /run
//! and /tmp are tmpfs, /data is the data partition. After every READY line init prints
//! `EDGEIMG-AUDIT ...` (see [`audit`]), read back from /proc, so all this can be checked from
//! outside a device that has no shell.

pub mod audit;
pub mod backoff;
pub mod boot;
pub mod cmdline;
pub mod config;
pub mod console;
pub mod data;
pub mod gpio_key;
pub mod input_event;
pub mod modules;
pub mod mounts;
pub mod net;
pub mod power_button;
pub mod readiness;
pub mod runloop;
pub mod shutdown;
pub mod signals;
pub mod slots;
pub mod supervisor;
pub mod switch_root;

/// Where the image keeps edge-init; a disk boot's initramfs execs it in the real root.
pub const INIT_IN_ROOT: &str = "/sbin/edge-init";
