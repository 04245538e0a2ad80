//! The Redis client link on any bytes from a server. See `check_redis_link`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loopchat_fuzz::check_redis_link(data));
