//! Encoding throughput (criterion).
//!
//! - `encode/record/*`: one thread encoding typical 10-field records (given, middle, family, DOB,
//!   sex, phone, street, town, ZIP, SSN-4) from a pool of 20,000 distinct records, through the
//!   token cache (the production path) and through the uncached reference encoder;
//! - `encode/pipeline/*`: the whole agency job (CSV read, extraction, normalisation, encoding,
//!   Parquet write) on a generated 100,000-row export at 1 and 2 threads.
//!
//! Run: `cargo bench --bench encode`. Figures are recorded in docs/encoding.md.

use std::hint::black_box;
use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crosswalk::encode::{reference, Encoder, Scratch};
use crosswalk::keys::SecretKey;
use crosswalk::normalize::Identifiers;
use crosswalk::schema::{Field, LinkageSchema};

// The binary's allocator, so that the pipeline figures match `crosswalk encode`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GIVEN: &[&str] = &[
    "MARIA",
    "JENNIFER",
    "ASHLEY",
    "JESSICA",
    "YESENIA",
    "GUADALUPE",
    "DESTINY",
    "KEISHA",
    "SOFIA",
    "CARMEN",
    "AALIYAH",
    "ANA",
    "LUZ",
    "BRITTANY",
    "TIFFANY",
    "KAYLA",
    "JASMINE",
    "NICOLE",
    "ALEXIS",
    "SAMANTHA",
];
const FAMILY: &[&str] = &[
    "RODRIGUEZ",
    "SMITH",
    "TORRES",
    "RIVERA",
    "JOHNSON",
    "WILLIAMS",
    "ORTIZ",
    "SANTIAGO",
    "RODRIGUEZ PEREZ",
    "DELGADO VEGA",
    "BROWN",
    "COLON",
    "GONZALEZ",
    "MARTINEZ",
    "DAVIS",
    "NGUYEN",
    "CRUZ",
    "REYES",
    "MORALES",
    "JACKSON",
];
const STREETS: &[&str] = &[
    "MAIN ST",
    "PARK AVE",
    "BROAD ST",
    "ALBANY AVE",
    "FARMINGTON AVE",
];
const TOWNS: &[&str] = &[
    "HARTFORD",
    "EAST HARTFORD",
    "WEST HARTFORD",
    "MANCHESTER",
    "ENFIELD",
];

/// A small deterministic generator (xorshift), so the bench needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
    fn num(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn records(n: usize) -> Vec<Identifiers> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            let mut ids = Identifiers::default();
            ids.set(Field::GivenName, Some(rng.pick(GIVEN).into()));
            ids.set(Field::MiddleName, Some(rng.pick(GIVEN).into()));
            ids.set(Field::FamilyName, Some(rng.pick(FAMILY).into()));
            ids.set(
                Field::Dob,
                Some(format!(
                    "{}{:02}{:02}",
                    rng.num(1980, 2012),
                    rng.num(1, 13),
                    rng.num(1, 29)
                )),
            );
            ids.set(Field::Sex, Some("F".into()));
            ids.set(
                Field::Phone,
                Some(format!("860{:07}", rng.num(0, 10_000_000))),
            );
            ids.set(
                Field::Street,
                Some(format!("{} {}", rng.num(1, 999), rng.pick(STREETS))),
            );
            ids.set(Field::Town, Some(rng.pick(TOWNS).into()));
            ids.set(Field::Zip, Some(format!("06{:03}", rng.num(0, 200))));
            ids.set(Field::Ssn4, Some(format!("{:04}", rng.num(0, 10_000))));
            ids
        })
        .collect()
}

fn bench_record(c: &mut Criterion) {
    let schema = LinkageSchema::default_schema();
    let key = SecretKey::from_bytes([7; 32]);
    let enc = Encoder::new(&schema, &key);
    let recs = records(20_000);
    let mut g = c.benchmark_group("encode/record");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.sample_size(10);
    g.bench_function("cached_1_thread", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            for r in &recs {
                black_box(enc.encode(r, &mut scratch));
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("encode/record_reference");
    g.throughput(Throughput::Elements(2_000));
    g.sample_size(10);
    g.bench_function("uncached_1_thread", |b| {
        b.iter(|| {
            for r in &recs[..2_000] {
                black_box(reference::encode(&schema, &key, r));
            }
        })
    });
    g.finish();
}

/// Writes a 100,000-row export in the DCF fixture's house style.
fn export(path: &std::path::Path, rows: usize) {
    let mut rng = Rng(42);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "Case ID,First Name,Middle Name,Last Name,DOB,Gender,Phone,Address,City,Zip,Event Type,Event Date,HT Type,Region").unwrap();
    for i in 0..rows {
        writeln!(
            f,
            "DCF-{i},{},{},{},{:02}/{:02}/{},F,({}) 555-{:04},{} {},{},{:05},CARELINE,2024-03-01,CSEC,Hartford",
            rng.pick(GIVEN),
            rng.pick(GIVEN),
            rng.pick(FAMILY),
            rng.num(1, 13),
            rng.num(1, 29),
            rng.num(1980, 2012),
            rng.num(200, 999),
            rng.num(0, 10_000),
            rng.num(1, 999),
            rng.pick(STREETS),
            rng.pick(TOWNS),
            6000 + rng.num(0, 200),
        )
        .unwrap();
    }
}

fn bench_pipeline(c: &mut Criterion) {
    use crosswalk::pipeline::encode::{run, EncodeJob};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    let rows = 100_000;
    export(&input, rows);
    let mapping = crosswalk::source::SourceMapping::from_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/encoder/dcf.toml"),
    )
    .unwrap();
    let mut g = c.benchmark_group("encode/pipeline");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(10);
    for threads in [1, 2] {
        let job = EncodeJob {
            schema: LinkageSchema::default_schema(),
            mapping: mapping.clone(),
            key: SecretKey::from_bytes([7; 32]),
            input: input.clone(),
            out: dir.path().join("out.parquet"),
            map_out: None,
            rejects: dir.path().join("rejects.csv"),
            threads,
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            chunk_rows: crosswalk::pipeline::encode::DEFAULT_CHUNK_ROWS,
        };
        g.bench_function(format!("csv_100k_rows_{threads}_threads"), |b| {
            b.iter(|| run(&job, &mut |_| {}).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_record, bench_pipeline);
criterion_main!(benches);
