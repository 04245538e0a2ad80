//! The WebSocket decoder in the client role on any bytes. See `check_websocket_decoder`.
#![no_main]

use loopchat::ws::Role;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    loopchat_fuzz::check_websocket_decoder(Role::Client, data)
});
