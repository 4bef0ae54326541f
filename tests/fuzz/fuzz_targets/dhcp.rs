#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeimg_fuzz::init::dhcp(data));
