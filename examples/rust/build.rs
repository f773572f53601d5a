//! Links libdrpo.  Where the library is looked for, in order:
//!  1. DRPO_LIB_DIR: a directory holding libdrpo.so (the meson test sets it
//!     to its build directory);
//!  2. the `pkg-config` program: `pkg-config --libs libdrpo` of an
//!     installed libdrpo (PKG_CONFIG_PATH is honoured);
//!  3. the build tree of this checkout, ../../build (`make` at the top).
//!
//! The directory is also written as an rpath, so tests and examples run
//! without LD_LIBRARY_PATH.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn link_dir(dir: &Path) {
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}

/// -L directories and -l names from pkg-config, if it knows libdrpo.
fn from_pkg_config() -> Option<(Vec<PathBuf>, Vec<String>)> {
    let out = Command::new("pkg-config")
        .args(["--libs", "libdrpo"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut dirs = Vec::new();
    let mut libs = Vec::new();
    for word in text.split_whitespace() {
        if let Some(d) = word.strip_prefix("-L") {
            dirs.push(PathBuf::from(d));
        } else if let Some(l) = word.strip_prefix("-l") {
            libs.push(l.to_string());
        }
    }
    Some((dirs, libs))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DRPO_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    if let Some(dir) = env::var_os("DRPO_LIB_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if !dir.join("libdrpo.so").exists() {
            panic!("DRPO_LIB_DIR={} holds no libdrpo.so", dir.display());
        }
        link_dir(&dir);
        println!("cargo:rustc-link-lib=dylib=drpo");
        return;
    }
    if let Some((dirs, libs)) = from_pkg_config() {
        // an installed library in a system directory needs no -L or rpath
        for d in &dirs {
            link_dir(d);
        }
        for l in &libs {
            println!("cargo:rustc-link-lib={l}");
        }
        if !libs.iter().any(|l| l == "drpo") {
            println!("cargo:rustc-link-lib=dylib=drpo");
        }
        return;
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let build = manifest.join("../../build");
    let build = build.canonicalize().unwrap_or(build);
    if !build.join("libdrpo.so").exists() {
        panic!(
            "libdrpo not found: set DRPO_LIB_DIR, install it where pkg-config finds it, \
             or run `make` at the top of the checkout (looked in {})",
            build.display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        build.join("libdrpo.so").display()
    );
    link_dir(&build);
    println!("cargo:rustc-link-lib=dylib=drpo");
}
