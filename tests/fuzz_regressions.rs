//! Replays the fuzz corpus seeds and every saved finding through the inbound path in plain
//! `cargo test`, so a crash the fuzzer once found stays fixed without a fuzzer installed.

use std::fs;
use std::path::Path;

#[test]
fn every_seed_and_finding_passes_the_inbound_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["corpus/inbound", "regressions"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            // What local fuzz runs add to the corpus is not committed; replay what is.
            if dir.starts_with("corpus") && !name.starts_with("seed-") {
                continue;
            }
            let data = fs::read(&path).expect("a readable input");
            loopchat::fuzzing::inbound(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed >= 10,
        "only {replayed} inputs found under {}",
        root.display()
    );
}
