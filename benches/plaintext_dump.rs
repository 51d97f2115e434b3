//! Not a timing bench: the plaintext side of a comparison. Writes the normalised identifiers of
//! every record of a synthetic world (one row per record, its first row; the same extraction
//! and normalisation `crosswalk encode` applies) to a CSV for a plaintext linker
//! (benches/plaintext_fs.py, Splink). Synthetic data only: the output holds names and birth
//! dates, which is why this lives in benches/ and never in the product.
//!
//! `cargo bench --bench plaintext_dump -- WORLD_DIR OUT.csv`

use std::path::Path;

use crosswalk::schema::Field;

#[path = "common/world.rs"]
mod world;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [world, out] = &args[..] else {
        eprintln!("usage: cargo bench --bench plaintext_dump -- WORLD_DIR OUT.csv");
        std::process::exit(2);
    };
    let world = Path::new(world);
    let mut w = csv::Writer::from_path(out).expect("output writable");
    let fields = [
        ("given", Field::GivenName),
        ("middle", Field::MiddleName),
        ("family", Field::FamilyName),
        ("dob", Field::Dob),
        ("sex", Field::Sex),
        ("phone", Field::Phone),
        ("street", Field::Street),
        ("town", Field::Town),
        ("zip", Field::Zip),
        ("ssn4", Field::Ssn4),
    ];
    let mut header = vec!["unique_id", "agency", "local_id"];
    header.extend(fields.iter().map(|f| f.0));
    header.extend(["alias_given", "alias_family", "age_band"]);
    w.write_record(&header).unwrap();
    let mut n = 0u64;
    world::for_each_record(world, |agency, e| {
        n += 1;
        let mut row = vec![
            format!("{}|{}", agency, e.local_id),
            agency.to_string(),
            e.local_id.clone(),
        ];
        for (_, f) in fields {
            // The birth years of an age (`YYYY|YYYY`) are no birth date: left out, as before
            // the encoder carried them.
            let v = e.ids.get(f).unwrap_or("");
            let v = if crosswalk::normalize::is_birth_years(v) {
                ""
            } else {
                v
            };
            row.push(v.to_string());
        }
        let alias = e.aliases.first();
        row.push(alias.and_then(|a| a.given.clone()).unwrap_or_default());
        row.push(alias.and_then(|a| a.family.clone()).unwrap_or_default());
        row.push(e.facts.age_band.label().to_string());
        w.write_record(&row).unwrap();
    });
    w.flush().unwrap();
    eprintln!("{n} records");
}
