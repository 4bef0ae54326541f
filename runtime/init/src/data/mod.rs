//! The writable data partition: find it by label or PARTUUID, mount it, hand it to the server.

pub mod probe;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edge_config::DataPartition;
use nix::mount::{mount, MsFlags};
use nix::unistd::{chown, Gid, Uid};

use crate::console;

const SYS_BLOCK: &str = "/sys/class/block";
/// Block drivers probe and scan partition tables after their module is loaded.
const DEVICE_PATIENCE: Duration = Duration::from_secs(5);

/// Finds and mounts the data partition; returns the mount point when mounted.
pub fn mount_data(data: &DataPartition, owner: (u32, u32)) -> Option<PathBuf> {
    let what = format!("data:{}", data.mountpoint);
    let Some(device) = wait_for_device(data, DEVICE_PATIENCE) else {
        console::error(
            &what,
            format!(
                "no block device with {} (is the disk attached and its driver in the image?)",
                describe(data)
            ),
        );
        return None;
    };
    if let Err(error) = std::fs::create_dir_all(&data.mountpoint) {
        console::error(&what, format!("cannot create the mount point: {error}"));
        return None;
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME;
    if let Err(errno) = mount(
        Some(&device),
        data.mountpoint.as_str(),
        Some(data.fstype.as_str()),
        flags,
        None::<&str>,
    ) {
        console::error(
            &what,
            format!(
                "mounting {} as {} failed: {errno} (is the {} module loaded?)",
                device.display(),
                data.fstype,
                data.fstype
            ),
        );
        return None;
    }
    // The server runs unprivileged and needs to write here.
    if let Err(errno) = chown(
        data.mountpoint.as_str(),
        Some(Uid::from_raw(owner.0)),
        Some(Gid::from_raw(owner.1)),
    ) {
        console::error(
            &what,
            format!("cannot hand the mount to the server user: {errno}"),
        );
    }
    console::line(&format!(
        "EDGEIMG-DATA device={} mountpoint={}",
        device.display(),
        data.mountpoint
    ));
    Some(PathBuf::from(&data.mountpoint))
}

/// Creates `dir` on the data partition (the model store) and hands it to the server's account,
/// which writes it and nothing else does.
pub fn make_server_dir(dir: &str, owner: (u32, u32)) {
    let result = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            chown(
                dir,
                Some(Uid::from_raw(owner.0)),
                Some(Gid::from_raw(owner.1)),
            )
            .map_err(|e| e.to_string())
        });
    if let Err(why) = result {
        console::error(
            &format!("data:{dir}"),
            format!("cannot prepare it for the server: {why}"),
        );
    }
}

fn describe(data: &DataPartition) -> String {
    match (&data.label, &data.partuuid) {
        (Some(label), Some(uuid)) => format!("label {label:?} and PARTUUID {uuid}"),
        (Some(label), None) => format!("label {label:?}"),
        (None, Some(uuid)) => format!("PARTUUID {uuid}"),
        (None, None) => "no identifier".to_string(),
    }
}

/// Polls until a block device matches `data` (label and/or PARTUUID) or `patience` runs out.
pub fn wait_for_device(data: &DataPartition, patience: Duration) -> Option<PathBuf> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(found) = find_device(data) {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Scans `/sys/class/block` for the device that matches `data`.
pub fn find_device(data: &DataPartition) -> Option<PathBuf> {
    find_by(data.label.as_deref(), data.partuuid.as_deref())
}

/// Scans `/sys/class/block` for the device with this label and/or PARTUUID (all given must
/// match).
pub fn find_by(want_label: Option<&str>, want_partuuid: Option<&str>) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(SYS_BLOCK).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    entries.into_iter().find_map(|entry| {
        let uevent = probe::parse_uevent(
            &std::fs::read_to_string(entry.path().join("uevent")).unwrap_or_default(),
        );
        let node = Path::new("/dev").join(uevent.devname.as_deref()?);
        let label = if want_label.is_some() {
            read_start(&node, probe::PROBE_LEN).and_then(|start| probe::label(&start))
        } else {
            None
        };
        let partuuid = match (&uevent.partuuid, uevent.partn) {
            (Some(uuid), _) => Some(uuid.clone()),
            (None, Some(partn)) if want_partuuid.is_some() => {
                table_partuuid_of(&entry.path(), partn)
            }
            _ => None,
        };
        probe::matches(
            want_label,
            want_partuuid,
            label.as_deref(),
            partuuid.as_deref(),
        )
        .then_some(node)
    })
}

/// Reads the partition table of the disk that holds the partition at `sys_part` (its sysfs
/// directory sits inside the disk's).
fn table_partuuid_of(sys_part: &Path, partn: u32) -> Option<String> {
    let disk_sys = std::fs::canonicalize(sys_part)
        .ok()?
        .parent()?
        .to_path_buf();
    let disk = probe::parse_uevent(&std::fs::read_to_string(disk_sys.join("uevent")).ok()?);
    let node = Path::new("/dev").join(disk.devname?);
    probe::table_partuuid(&read_start(&node, probe::TABLE_PROBE_LEN)?, partn)
}

fn read_start(node: &Path, len: usize) -> Option<Vec<u8>> {
    let mut start = vec![0u8; len];
    std::fs::File::open(node)
        .ok()?
        .read_exact(&mut start)
        .ok()?;
    Some(start)
}
