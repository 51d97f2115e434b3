//! The Dice kernel (criterion): pairs per second on one core, per platform.
//!
//! - `compare/full/*`: every pair's intersection fully computed (no pruning), 1024-bit CLKs of
//!   random bits at 30% density (the density of crosswalk's default schema, docs/encoding.md);
//! - `compare/full_batch/*`: the batch kernel (`ClkMatrix::matches_in`) on the same CLKs at a
//!   threshold where every pair is fully computed and none passes (checked before timing);
//! - `compare/pruned_t0.8/*`: the batch kernel at threshold 0.8 on the real encodings of the
//!   committed synthetic world (fixtures/world, 1,074 records: realistic popcounts, true pairs
//!   and twins), rows in popcount order as the linkage job sorts them, counting every pair
//!   offered, skipped or not (effective comparisons).
//!
//! - `compare/full_block/*` and `compare/pruned_t0.8_block/*`: the same pairs through the
//!   block kernel (`ClkMatrix::matches_block`, eight rows against all rows per call), the form
//!   the linkage job's all-pairs comparison uses;
//! - `compare/link_all_pairs_t0.8/*`: the world's all-pairs comparison as `crosswalk link`
//!   runs it (each row only against the popcount window that can reach 0.8), counting every
//!   distinct pair, n(n-1)/2, as offered;
//! - `compare/full_block_2threads` and `compare/pruned_t0.8_2threads`: the same batch work
//!   spread over two rayon threads (blocks of rows split between them), for the scaling.
//!
//! - `clock/dependent_adds`: the core's clock during the run (one dependent add per cycle), to
//!   turn pairs per second into cycles per pair.
//!
//! Run: `cargo bench --bench compare`. Figures in docs/linkage.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crosswalk::compare::{intersection, ClkMatrix, Platform, Threshold};

fn random_matrix(n: usize) -> ClkMatrix {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut bytes = Vec::with_capacity(n * 128);
    for _ in 0..n * 1024 / 8 {
        let mut b = 0u8;
        for bit in 0..8 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if s % 10 < 3 {
                b |= 1 << bit;
            }
        }
        bytes.push(b);
    }
    ClkMatrix::from_bytes(1024, &bytes).unwrap()
}

/// Encodes the committed synthetic world with a fixed key and stacks all CLKs.
fn world_matrix() -> ClkMatrix {
    use crosswalk::pipeline::encode::{run, EncodeJob};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/world");
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for (stem, _) in crosswalk::synth::AGENCIES {
        let out = dir.path().join(format!("{stem}.parquet"));
        let job = EncodeJob {
            schema: crosswalk::schema::LinkageSchema::default_schema(),
            mapping: crosswalk::source::SourceMapping::from_file(
                &root.join(format!("mappings/{stem}.toml")),
            )
            .unwrap(),
            key: crosswalk::keys::SecretKey::from_bytes([9; 32]),
            input: root.join(format!("exports/{stem}.csv")),
            out: out.clone(),
            map_out: None,
            rejects: dir.path().join(format!("{stem}.rejects.csv")),
            threads: 1,
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            chunk_rows: crosswalk::pipeline::encode::DEFAULT_CHUNK_ROWS,
        };
        run(&job, &mut |_| {}).unwrap();
        bytes.extend(crosswalk::io::encodings::read(&out).unwrap().clks);
    }
    // Rows in popcount order, as the linkage job sorts them before comparing.
    let mut rows: Vec<&[u8]> = bytes.chunks_exact(128).collect();
    rows.sort_by_key(|r| (r.iter().map(|b| b.count_ones()).sum::<u32>(), r.to_vec()));
    ClkMatrix::from_bytes(1024, &rows.concat()).unwrap()
}

fn bench(c: &mut Criterion) {
    let m = random_matrix(1000);
    let n = m.len();
    let mut g = c.benchmark_group("compare/full");
    g.throughput(Throughput::Elements((n * n) as u64));
    g.sample_size(10);
    for p in Platform::available() {
        g.bench_function(p.name(), |b| {
            b.iter(|| {
                let mut total = 0u64;
                for i in 0..n {
                    let a = m.row(i);
                    for j in 0..n {
                        total += intersection(p, a, m.row(j)) as u64;
                    }
                }
                black_box(total)
            })
        });
    }
    g.finish();

    // The batch form the linkage job uses, at a threshold that no pair of these random CLKs
    // reaches (their Dice is ~0.3) but that none can be pruned at either (the popcount and
    // half-way bounds are ~1.0 and ~0.65): every intersection is fully computed and no pair is
    // output. Checked before timing.
    let full_t = Threshold::new(0.5);
    assert_fully_computed(&m, full_t);
    batch_group(c, "full_batch", &m, full_t);

    block_groups(c, "full", &m, full_t);

    let w = world_matrix();
    let n = w.len();
    let t = Threshold::new(0.8);
    batch_group(c, "pruned_t0.8", &w, t);

    block_groups(c, "pruned_t0.8", &w, t);

    // The all-pairs comparison as the linkage job runs it: rows in popcount order, each row
    // against the later rows whose popcount can reach t (a window found by binary search, so
    // pairs outside it are skipped without being looked at), blocks of eight rows through the
    // block kernel. Throughput counts every distinct pair, n(n-1)/2, skipped or compared.
    let pops: Vec<u32> = (0..n).map(|i| w.popcount(i)).collect();
    let tv = t.value();
    let windows: Vec<std::ops::Range<usize>> = (0..n)
        .map(|i| {
            let max_pop = (pops[i] as f64 * (2.0 - tv) / tv).floor() as u32;
            i + 1..pops.partition_point(|&p| p <= max_pop).max(i + 1)
        })
        .collect();
    let p = Platform::detect();
    let mut g = c.benchmark_group("compare/link_all_pairs_t0.8");
    g.throughput(Throughput::Elements((n * (n - 1) / 2) as u64));
    g.sample_size(10);
    g.bench_function(p.name(), |b| {
        b.iter(|| black_box(blocks(&w, p, t, &windows)))
    });
    g.finish();
}

/// `compare/{name}_block/*` on every platform, and `compare/{name}_block_2threads` on the
/// detected one: every row against every row through `matches_block`.
fn block_groups(c: &mut Criterion, name: &str, m: &ClkMatrix, t: Threshold) {
    let n = m.len();
    let mut g = c.benchmark_group(format!("compare/{name}_block"));
    g.throughput(Throughput::Elements((n * n) as u64));
    g.sample_size(10);
    let everything = vec![0..n; n];
    for p in Platform::available() {
        g.bench_function(p.name(), |b| {
            b.iter(|| black_box(blocks(m, p, t, &everything)))
        });
    }
    g.finish();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let p = Platform::detect();
    let mut g = c.benchmark_group(format!("compare/{name}_block_2threads"));
    g.throughput(Throughput::Elements((n * n) as u64));
    g.sample_size(10);
    g.bench_function(p.name(), |b| {
        b.iter(|| pool.install(|| black_box(block_par(m, p, t))))
    });
    g.finish();
}

/// `compare/{name}/*` on every platform: every row against every row through `matches_in`.
fn batch_group(c: &mut Criterion, name: &str, m: &ClkMatrix, t: Threshold) {
    let n = m.len();
    let mut g = c.benchmark_group(format!("compare/{name}"));
    g.throughput(Throughput::Elements((n * n) as u64));
    g.sample_size(10);
    for p in Platform::available() {
        g.bench_function(p.name(), |b| {
            let mut out = Vec::with_capacity(n);
            b.iter(|| {
                let mut hits = 0u64;
                for i in 0..n {
                    out.clear();
                    m.matches_in(p, i, 0..n, t, &mut out);
                    hits += out.len() as u64;
                }
                black_box(hits)
            })
        });
    }
    g.finish();
}

/// Row `i` of `m` against the rows of `ranges[i]`, eight rows per `matches_block` call, on one
/// thread; the number of pairs found.
fn blocks(m: &ClkMatrix, p: Platform, t: Threshold, ranges: &[std::ops::Range<usize>]) -> u64 {
    let n = m.len();
    let mut out = Vec::with_capacity(n);
    let mut hits = 0u64;
    for i0 in (0..n).step_by(8) {
        out.clear();
        m.matches_block(p, i0, &ranges[i0..(i0 + 8).min(n)], t, &mut out);
        hits += out.len() as u64;
    }
    hits
}

/// Panics unless every pair of `m` passes both pruning bounds at `t` and none reaches `t`.
fn assert_fully_computed(m: &ClkMatrix, t: Threshold) {
    let half = m.row(0).len() / 2;
    let pop = |r: &[u64]| r.iter().map(|w| w.count_ones()).sum::<u32>();
    for i in 0..m.len() {
        for j in 0..m.len() {
            let (a, b) = (m.row(i), m.row(j));
            let total = m.popcount(i) + m.popcount(j);
            let first = intersection(Platform::PORTABLE, &a[..half], &b[..half]);
            let bound = first + pop(&a[half..]).min(pop(&b[half..]));
            assert!(t.accepts(m.popcount(i).min(m.popcount(j)), total));
            assert!(
                t.accepts(bound, total),
                "pair ({i},{j}) would stop half-way"
            );
            assert!(!t.accepts(m.intersection(Platform::PORTABLE, i, j), total) || i == j);
        }
    }
}

/// Every row against every row through the block kernel, blocks of eight rows spread over
/// the current rayon pool with one result buffer per task; the number of pairs found.
fn block_par(m: &ClkMatrix, p: Platform, t: Threshold) -> u64 {
    use rayon::prelude::*;
    let n = m.len();
    (0..n.div_ceil(8))
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(n),
            |out, b| {
                out.clear();
                m.matches_block(p, b * 8, &vec![0..n; 8], t, out);
                out.len() as u64
            },
        )
        .sum()
}

/// `clock/dependent_adds`: a chain of dependent 64-bit adds, one per cycle on any x86-64 core,
/// so its throughput (elements/s) is the core's clock during the run: a kernel's cycles per
/// pair are its clock over its pairs per second. (The nominal clock in `/proc/cpuinfo` is not
/// what a VM's cores run at.)
#[cfg(target_arch = "x86_64")]
fn clock(c: &mut Criterion) {
    const ADDS: u64 = 100_000_000;
    let mut g = c.benchmark_group("clock");
    g.throughput(Throughput::Elements(ADDS));
    g.sample_size(10);
    g.bench_function("dependent_adds", |b| {
        b.iter(|| {
            let (mut x, mut n) = (0u64, ADDS / 4);
            // SAFETY: register-only arithmetic and a loop on a counter; no memory is touched.
            unsafe {
                std::arch::asm!(
                    "2:",
                    "add {x}, 1",
                    "add {x}, 1",
                    "add {x}, 1",
                    "add {x}, 1",
                    "dec {n}",
                    "jnz 2b",
                    x = inout(reg) x,
                    n = inout(reg) n,
                    options(nomem, nostack),
                );
            }
            black_box((x, n))
        })
    });
    g.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn clock(_: &mut Criterion) {}

criterion_group!(benches, clock, bench);
criterion_main!(benches);
