//! The jobs crosswalk runs, each wiring the stage modules together: `encode` (at each agency)
//! and `demo` (everything on embedded data).
//!
//! A job takes a validated configuration struct and returns a summary of counts; the binary only
//! builds the configuration from flags and prints the summary.

pub mod demo;
pub mod encode;
pub mod link;
