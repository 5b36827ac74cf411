//! The console's built assets are embedded by `include_dir!`, which cannot tell cargo about
//! the files it reads: this makes a new `console/dist` rebuild the crate.

fn main() {
    println!("cargo:rerun-if-changed=../console/dist");
}
