//! The line port's reader on any bytes. See `check_line_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loopchat_fuzz::check_line_reader(data));
