//! `husk`: runc's command line over the husk library. Each verb lives in `cli/<verb>.rs`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
