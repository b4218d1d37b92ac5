//! Loading a version whose `model.json` is arbitrary bytes.
#![no_main]

use std::sync::OnceLock;

fn version_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("no temporary directory");
        myelin::fuzz::write_fixture_version(dir.path()).expect("cannot write the fixture");
        dir
    })
    .path()
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| myelin::fuzz::model_card(version_dir(), bytes));
