#![no_main]
//! Fuzz target `clkhash_clks`: see `targets::clkhash_clks`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::clkhash_clks(data));
