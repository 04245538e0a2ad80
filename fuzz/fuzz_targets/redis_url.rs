//! `redis://` URLs: parsed, printed without their password. See `check_redis_url`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loopchat_fuzz::check_redis_url(data));
