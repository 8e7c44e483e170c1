//! Compiles the committed `.proto` files (pure Rust, no protoc) into a descriptor set the bridge
//! embeds: the bridge translates with descriptors at run time instead of generated structs,
//! so one generic path serves every method.

use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let proto_root = root.join("proto");
    let dir = proto_root.join("mattermost/plugin/v1");
    println!("cargo:rerun-if-changed={}", dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("schema/mattermost-api.json").display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::Compiler::new([&proto_root])
        .expect("proto include path")
        .include_imports(true)
        .open_files(&files)
        .unwrap_or_else(|e| panic!("compiling {}: {e}", dir.display()))
        .encode_file_descriptor_set();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("descriptors.bin");
    std::fs::write(&out, fds).expect("write descriptor set");
}
