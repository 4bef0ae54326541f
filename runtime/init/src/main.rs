//! PID 1 entry point; see the library docs for what init does.

fn main() {
    if std::process::id() != 1 {
        eprintln!(
            "edge-init must run as PID 1 (the kernel's init); it is not a command to run by hand"
        );
        std::process::exit(2);
    }
    // A panic must never end PID 1 (the kernel would panic): report it and power off.
    let outcome =
        std::panic::catch_unwind(|| -> std::convert::Infallible { edge_init::boot::boot() });
    let why = match outcome {
        Ok(never) => match never {},
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string()),
    };
    edge_init::console::error("panic", why);
    edge_init::shutdown::power_off("panic", None);
}
