fn main() {
    std::process::exit(storybench::cli::main());
}
