//! The model's comparison of two records (criterion): `evidence::levels`, the level vector of a
//! record pair from its parts, in pairs per second on one core. Every candidate pair of a
//! `--model fs` run goes through it (at a million records, tens of millions of pairs: the
//! parts' similarity and levels were 16% of the hard million's CPU, docs/measurements/
//! 2026-12-07-groups-and-twins.md).
//!
//! - `evidence/levels_diffused`: records with a names, birth-date, phone and address part of
//!   1,024 bits and an SSN-4 part of 256, diffused (4 taps: half their bits set), sex and a
//!   birth-year interval; pairs of random records.
//! - `evidence/levels_plain`: the same parts at plain densities (about 10-30% set).
//!
//! Run: `cargo bench --bench evidence`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crosswalk::link::evidence::{levels, RecordEvidence};

/// splitmix64: the bench's one source of random numbers (fixed seeds).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` records of random parts at `density` percent bits set, from a fixed seed.
fn records(n: usize, density: u64) -> Vec<RecordEvidence> {
    let mut state = 0x000e_71de_9ce5_u64;
    let mut next = move || splitmix(&mut state);
    let mut part = |bytes: usize| -> Vec<u8> {
        (0..bytes)
            .map(|_| (0..8).fold(0u8, |acc, i| acc | (((next() % 100) < density) as u8) << i))
            .collect()
    };
    (0..n)
        .map(|i| RecordEvidence {
            names: vec![part(128)],
            dob: vec![part(128)],
            phone: vec![part(128)],
            address: vec![part(128)],
            ssn4: vec![part(32)],
            sex: vec![1],
            born: vec![(1990 + (i % 20) as i32, 1995 + (i % 20) as i32)],
            born_years: Vec::new(),
            given_dob: Vec::new(),
            family_dob: Vec::new(),
            span: Some((738_000 + (i % 700) as i32, 738_030 + (i % 700) as i32)),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    // 4,096 pairs of two different records drawn at random (a fixed seed).
    let mut state = 0x5eed_u64;
    let mut draw = move || splitmix(&mut state) as usize % 512;
    let pairs: Vec<(usize, usize)> = (0..4096)
        .map(|_| {
            let a = draw();
            (a, (a + 1 + draw() % 511) % 512)
        })
        .collect();
    let mut g = c.benchmark_group("evidence");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    for (name, density, taps) in [("levels_diffused", 50, Some(4)), ("levels_plain", 20, None)] {
        let recs = records(512, density);
        g.bench_function(name, |b| {
            let mut out = Vec::with_capacity(pairs.len() * 8);
            b.iter(|| {
                out.clear();
                for &(x, y) in &pairs {
                    levels(&recs[x], &recs[y], taps, &mut out);
                }
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
