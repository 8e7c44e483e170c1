//! `mmplug-codegen`: regenerate proto/mattermost/plugin/v1/{models,api,hooks}.proto,
//! python/src/mattermost_plugin/_generated/ and docs/reference/ from schema/mattermost-api.json.
//! `--check` writes nothing and exits 1 when any file would change.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: mmplug-codegen [--schema FILE] [--out DIR] [--python-out DIR] [--docs-out DIR] [--check]
  --schema FILE      schema JSON (default: <repo>/schema/mattermost-api.json)
  --out DIR          proto root (default: <repo>/proto)
  --python-out DIR   the mattermost_plugin package (default: <repo>/python/src/mattermost_plugin)
  --docs-out DIR     the hook and API reference (default: <repo>/docs/reference)
  --check            write nothing; exit 1 if regenerating would change any file";

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut schema = root.join("schema/mattermost-api.json");
    let mut out = root.join("proto");
    let mut python = root.join("python/src/mattermost_plugin");
    let mut docs = root.join(mmplug_codegen::REFERENCE_DIR);
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--schema" | "--out" | "--python-out" | "--docs-out" => {
                let Some(v) = args.next() else {
                    eprintln!("mmplug-codegen: {a} needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                match a.as_str() {
                    "--schema" => schema = v.into(),
                    "--out" => out = v.into(),
                    "--python-out" => python = v.into(),
                    _ => docs = v.into(),
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("mmplug-codegen: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let dirs = mmplug_codegen::OutDirs {
        proto_root: out,
        python_pkg: python,
        docs,
    };
    match mmplug_codegen::run(&schema, &dirs, check) {
        Ok(stale) if check && !stale.is_empty() => {
            for f in &stale {
                eprintln!("mmplug-codegen: {} is stale", f.display());
            }
            eprintln!("mmplug-codegen: run `cargo run -p mmplug-codegen` and commit the result");
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mmplug-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
