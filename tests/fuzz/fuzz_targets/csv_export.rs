#![no_main]
//! Fuzz target `csv_export`: see `targets::csv_export`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::csv_export(data));
