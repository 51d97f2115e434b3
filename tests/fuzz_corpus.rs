//! The committed fuzz corpus (`tests/fuzz/corpus/<target>/`), replayed through the fuzz
//! targets' bodies on every `cargo test`: the coverage the fuzzers reached, and the inputs that
//! once crashed crosswalk (kept as `regression-<what>` files in their target's corpus, each
//! with a test of its own where the fix lives). The fuzzers themselves run by hand
//! (docs/fuzzing.md); CI runs only this.

#[path = "fuzz/targets.rs"]
mod targets;

use crate::util::root;

#[test]
fn every_committed_fuzz_input_runs_without_a_panic() {
    let corpus = root().join("tests/fuzz/corpus");
    let mut ran = 0;
    for (name, target) in targets::TARGETS {
        let dir = corpus.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {name}");
        for f in files {
            // (A fuzzer running on the corpus meanwhile may have replaced the file.)
            let Ok(data) = std::fs::read(&f) else {
                continue;
            };
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} panics", f.display());
            ran += 1;
        }
    }
    assert!(ran >= targets::TARGETS.len());
}
