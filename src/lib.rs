#![forbid(unsafe_code)]
pub mod ws;
