//! The boot sequence, in order: signals, mounts, config, hostname, modules, network, data,
//! read-only root, then the run loop.

use std::path::Path;

use nix::sys::reboot::set_cad_enabled;

use crate::power_button::PowerButton;
use crate::runloop::{self, Settings};
use crate::signals::Signals;
use crate::supervisor::ServerSpec;
use crate::{
    cmdline, config, console, data, modules, mounts, net, readiness, shutdown, slots, switch_root,
};

pub fn boot() -> ! {
    // First, so a power-off signal that arrives during boot waits in the queue.
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(errno) => {
            console::error("signals", format!("cannot set up signal handling: {errno}"));
            shutdown::power_off("signals", None);
        }
    };
    // Ctrl-alt-del then arrives as SIGINT and powers off cleanly instead of an instant reboot.
    if let Err(errno) = set_cad_enabled(false) {
        console::error("reboot:cad", errno);
    }
    mounts::mount_boot_filesystems();
    console::info(format!(
        "started at {} ms since boot",
        readiness::ms_since_boot()
    ));

    let flags = cmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
    if let Some(root) = &flags.root {
        if switch_root::running_from_initramfs() {
            switch_root::switch_to(root);
        }
    }
    for word in &flags.unknown {
        console::error(
            "cmdline",
            format!("unknown flag {word:?} ignored (see edge-init docs)"),
        );
    }
    if flags.debug_shell_asked {
        console::error("cmdline", cmdline::DEBUG_SHELL_REFUSED);
    }

    let config = match config::load(Path::new(edge_config::DEVICE_CONFIG_PATH)) {
        Ok(config) => config,
        Err(error) => {
            console::error("config", error);
            shutdown::power_off("config", None);
        }
    };

    if let Err(errno) = nix::unistd::sethostname(&config.hostname) {
        console::error("hostname", format!("{:?}: {errno}", config.hostname));
    }
    let coldplug = modules::load_at_boot(&config.init.modules);
    step(&format!(
        "coldplug: {coldplug}; {} listed modules",
        config.init.modules.len()
    ));
    // After the modules: the button and input drivers may be among them.
    match PowerButton::watch() {
        Ok(button) => signals.watch_power_button(button),
        Err(errno) => console::error("power-button", format!("cannot watch: {errno}")),
    }
    net::bring_up_loopback();
    net::start(&config.init.network, &config.hostname);
    let data_mount =
        config.init.data.as_ref().and_then(|data| {
            data::mount_data(data, (config.init.server_uid, config.init.server_gid))
        });
    if let (Some(_), Some(updates)) = (&data_mount, &config.runtime.model_updates) {
        data::make_server_dir(
            &updates.store,
            (config.init.server_uid, config.init.server_gid),
        );
    }
    // After the data partition (state.json lives there), before the server: a rollback
    // reboots from here.
    let slots = config.system.as_ref().and_then(|system| {
        slots::Slots::at_boot(
            system,
            flags.slot.as_deref(),
            data_mount.as_deref(),
            (config.init.server_uid, config.init.server_gid),
        )
    });
    mounts::make_root_read_only();
    step("starting the server");

    // config::load checked the address already.
    let listen = config::listen_address(&config.runtime.listen)
        .unwrap_or_else(|_| ([127, 0, 0, 1], 8000).into());
    let settings = Settings {
        server: ServerSpec::from_config(&config),
        probe: readiness::probe_target(listen),
        listen: config.runtime.listen.clone(),
        models: config::model_names(&config),
        debug_shell: config.init.debug_shell,
        flags,
        data_mount,
        slots,
    };
    runloop::run(settings, signals)
}

/// A human-readable progress line with the time, to see where boot time goes.
fn step(what: &str) {
    console::info(format!("{what} at {} ms", readiness::ms_since_boot()));
}
