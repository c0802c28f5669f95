//! Memory of a load from a large gzip CSV (a figure, not a timed test):
//! `dht load` of generated gzip CSV files of growing size (by default 64
//! MB, 256 MB and 1 GB compressed) into a new 1,000-node ring with r = 3,
//! each file read and stored in parts (`--part-size`, default 64M). Reports
//! each run's peak resident memory (`wait4`'s maximum resident set) and
//! wall time next to the baseline measured in the same run: the smallest
//! file loaded whole in memory (`--part-size` larger than the file), as
//! every load was before parts. Bounded means the peak stays flat while
//! the file grows sixteenfold.
//!
//! Run: `cargo bench --bench big_load` (`-- --quick` for 16, 64 and 256 MB;
//! `-- --sizes 32,128` for other sizes in MB). Needs about 8 times the
//! largest size free on the temporary directory's disk (the decompressed
//! copy, the spill files, the state file and its log).

mod common;

use std::io::Write;
use std::path::Path;

/// The `dht` binary built with this benchmark.
const DHT: &str = env!("CARGO_BIN_EXE_dht");

/// Words for the text column.
const WORDS: &[&str] = &[
    "apple", "river", "stone", "cloud", "maple", "ember", "frost", "grove", "harbor", "island",
    "jasmine", "kettle", "lantern", "meadow", "nectar", "orchard", "pepper", "quartz", "raven",
    "saffron", "thistle", "umber", "velvet", "willow", "yarrow", "zephyr", "amber", "birch",
    "cedar", "dune", "fern", "glacier", "heather", "iris", "juniper", "kelp", "lichen", "moss",
];

/// Cities for a categorical column.
const CITIES: &[&str] = &[
    "Lisbon", "Oslo", "Quito", "Nairobi", "Osaka", "Lima", "Perth", "Tunis", "Dakar", "Riga",
];

/// A counting writer: the compressed size written so far.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a gzip CSV of about `mb` MB compressed: unique 16-digit hex keys,
/// a city, an integer, a decimal and a few words. Returns (rows, text
/// bytes).
fn write_csv(path: &Path, mb: u64, seed: u64) -> std::io::Result<(u64, u64)> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut z = flate2::write::GzEncoder::new(
        Counted {
            inner: file,
            bytes: 0,
        },
        flate2::Compression::fast(),
    );
    let mut line = String::with_capacity(256);
    let header = "key,city,qty,price,note\n";
    z.write_all(header.as_bytes())?;
    let (mut rows, mut text) = (0u64, header.len() as u64);
    let mut x = seed | 1;
    let mut next = || {
        // xorshift64*: fast, and the same file on every run.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let target = mb << 20;
    while z.get_ref().bytes < target {
        for _ in 0..4096 {
            line.clear();
            let r = next();
            let words = 3 + (r % 4) as usize;
            use std::fmt::Write as _;
            let _ = write!(
                line,
                "{:016x},{},{},{}.{:02},",
                next(),
                CITIES[(r >> 8) as usize % CITIES.len()],
                (r >> 16) % 10_000,
                (r >> 32) % 1000,
                (r >> 48) % 100
            );
            for w in 0..words {
                if w > 0 {
                    line.push(' ');
                }
                line.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
            }
            line.push('\n');
            z.write_all(line.as_bytes())?;
            rows += 1;
            text += line.len() as u64;
        }
    }
    z.finish()?.inner.flush()?;
    Ok((rows, text))
}

/// One load of `gz` into a new ring at `state`, with `part` as the part
/// size (None: the default); (wall s, peak MB).
fn load(gz: &Path, state: &Path, part: Option<&str>) -> (f64, f64) {
    let _ = std::fs::remove_file(state);
    let mut args = vec![
        "--state",
        state.to_str().unwrap(),
        "load",
        "--path",
        gz.to_str().unwrap(),
        "--key-col",
        "key",
        "--nodes",
        "1000",
        "--replicas",
        "3",
        "--show",
        "0",
        "--json",
    ];
    if let Some(p) = part {
        args.extend(["--part-size", p]);
    }
    let r = common::measure(DHT, &args);
    let _ = std::fs::remove_file(state);
    r
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<u64> = match args.iter().position(|a| a == "--sizes") {
        Some(i) => args
            .get(i + 1)
            .ok_or("--sizes needs a list")?
            .split(',')
            .map(|s| s.trim().parse())
            .collect::<Result<_, _>>()?,
        None if args.iter().any(|a| a == "--quick") => vec![16, 64, 256],
        None => vec![64, 256, 1024],
    };
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("ring.db");
    println!("| gzip MB | CSV MB | rows | load | wall s | peak MB | peak / baseline |");
    println!("|---:|---:|---:|---|---:|---:|---:|");
    let mut baseline = None;
    for (i, &mb) in sizes.iter().enumerate() {
        let gz = dir.path().join(format!("rows-{mb}.csv.gz"));
        let (rows, text) = write_csv(&gz, mb, 0x9e37_79b9 + i as u64)?;
        let text_mb = text as f64 / (1u64 << 20) as f64;
        let row = |what: &str, (secs, peak): (f64, f64), base: f64| {
            println!(
                "| {mb} | {text_mb:.0} | {rows} | {what} | {secs:.1} | {peak:.0} | {:.2} |",
                peak / base
            );
        };
        if baseline.is_none() {
            // The baseline: the same file held whole in memory.
            let whole = load(&gz, &state, Some("1T"));
            baseline = Some(whole.1);
            row("whole (baseline)", whole, whole.1);
        }
        let base = baseline.expect("set above");
        row("in parts (default size)", load(&gz, &state, None), base);
        std::fs::remove_file(&gz)?;
    }
    Ok(())
}
