//! Rebuilds the host bindings whenever the WIT contract changes: `bindgen!`
//! reads `sdk/wit` at compile time, which cargo does not otherwise watch.

fn main() {
    println!("cargo:rerun-if-changed=../../sdk/wit");
}
