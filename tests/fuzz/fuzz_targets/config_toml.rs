#![no_main]
//! Fuzz target `config_toml`: see `targets::config_toml`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::config_toml(data));
