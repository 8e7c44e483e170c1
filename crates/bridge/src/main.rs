fn main() {
    eprintln!("mmplug-bridge: not wired yet");
    std::process::exit(1);
}
