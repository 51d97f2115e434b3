//! Shared by the experiment benches: every record of a synthetic world, read as
//! `crosswalk encode` reads it.

use std::collections::HashSet;
use std::path::Path;

use crosswalk::io::csv_in::RawRow;
use crosswalk::io::ExportSource;
use crosswalk::source::{Extracted, Extractor, SourceMapping};

/// Calls `f(agency, record)` for every accepted row of every synth export of `world`, the first
/// row of each local id only, in the agencies' order and the rows' order.
pub fn for_each_record(world: &Path, mut f: impl FnMut(&str, Extracted)) {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a valid date");
    for (stem, _) in crosswalk::synth::AGENCIES {
        let mapping = SourceMapping::from_file(&world.join(format!("mappings/{stem}.toml")))
            .expect("mapping");
        let input = world.join(format!("exports/{stem}.csv"));
        let mut src =
            ExportSource::open(&input, mapping.delimiter_byte(), mapping.encoding).expect("open");
        let ex = Extractor::new(&mapping, src.headers(), today, &input).expect("columns");
        let mut seen = HashSet::new();
        let mut chunk: Vec<RawRow> = Vec::new();
        loop {
            let k = src.read_chunk(&mut chunk, 8192).expect("read");
            if k == 0 {
                break;
            }
            for raw in &chunk[..k] {
                let cells: Vec<&[u8]> = raw.record.iter().collect();
                let e = ex.extract(&cells);
                if e.rejected || !seen.insert(e.local_id.clone()) {
                    continue;
                }
                f(&mapping.agency, e);
            }
        }
    }
}
