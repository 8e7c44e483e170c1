//! The executable Mattermost launches. Everything is in the library: see `run`.
fn main() {
    std::process::exit(mmplug_bridge::run::main());
}
