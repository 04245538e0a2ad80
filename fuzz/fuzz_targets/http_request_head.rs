//! The HTTP request head parser, then `classify`, on any bytes. See `check_request_head`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loopchat_fuzz::check_request_head(data));
