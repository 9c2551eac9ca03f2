//! Rebuilds the bindings whenever the WIT contract changes: the
//! `generate!` macro reads `../wit` at compile time, which cargo does not
//! otherwise know to watch.

fn main() {
    println!("cargo:rerun-if-changed=../wit");
}
