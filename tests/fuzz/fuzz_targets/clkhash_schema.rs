#![no_main]
//! Fuzz target `clkhash_schema`: see `targets::clkhash_schema`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::clkhash_schema(data));
