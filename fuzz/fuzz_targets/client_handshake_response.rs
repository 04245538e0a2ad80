//! The client's check of the server's handshake answer on any bytes. See
//! `check_handshake_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| loopchat_fuzz::check_handshake_response(data));
