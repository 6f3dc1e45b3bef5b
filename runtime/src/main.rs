//! `husk`: runc's command line over the husk library. Each verb lives in `cli/<verb>.rs`.

mod cli;

fn main() {
    let code = cli::main();
    husk::exeseal::hand_off_teardown();
    std::process::exit(code);
}
