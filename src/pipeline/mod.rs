//! The jobs crosswalk runs, each wiring the stage modules together: `encode` (at each agency),
//! `link` (at the taskforce), `report` (aggregates and the HTML report) and `demo` (the whole pipeline on a synthetic world).
//!
//! A job takes a validated configuration struct and returns a summary of counts; the binary only
//! builds the configuration from flags and prints the summary.

pub mod demo;
pub mod encode;
pub mod link;
pub mod report;
