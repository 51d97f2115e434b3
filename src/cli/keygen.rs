//! `crosswalk keygen` and `crosswalk kcv`.

use std::path::PathBuf;

use clap::Args;
use crosswalk::keys::SecretKey;

/// Flags of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key file (must not exist; created with mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Flags of `kcv`.
#[derive(Debug, Args)]
pub struct KcvArgs {
    /// The key file.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
}

pub fn keygen(args: &KeygenArgs) -> crosswalk::Result<()> {
    let key = SecretKey::generate()?;
    key.write_new(&args.out)?;
    eprintln!(
        "crosswalk: wrote a new 256-bit key to {} (mode 0600). Share it only with the other \
         agencies, over a channel the taskforce cannot read.",
        args.out.display()
    );
    super::stdout_line(&key.check_value())
}

pub fn kcv(args: &KcvArgs) -> crosswalk::Result<()> {
    let key = SecretKey::read(&args.key_file)?;
    super::stdout_line(&key.check_value())
}
