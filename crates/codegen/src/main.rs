//! `mmplug-codegen`: regenerate proto/mattermost/plugin/v1/{models,api,hooks}.proto and
//! python/src/mattermost_plugin/_generated/ from schema/mattermost-api.json. `--check` writes
//! nothing and exits 1 when any file would change.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: mmplug-codegen [--schema FILE] [--out DIR] [--python-out DIR] [--check]
  --schema FILE      schema JSON (default: <repo>/schema/mattermost-api.json)
  --out DIR          proto root (default: <repo>/proto)
  --python-out DIR   the mattermost_plugin package (default: <repo>/python/src/mattermost_plugin)
  --check            write nothing; exit 1 if regenerating would change any file";

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut schema = root.join("schema/mattermost-api.json");
    let mut out = root.join("proto");
    let mut python = root.join("python/src/mattermost_plugin");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--schema" | "--out" | "--python-out" => {
                let Some(v) = args.next() else {
                    eprintln!("mmplug-codegen: {a} needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                match a.as_str() {
                    "--schema" => schema = v.into(),
                    "--out" => out = v.into(),
                    _ => python = v.into(),
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
    match mmplug_codegen::run(&schema, &out, &python, check) {
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
