//! UniFFI's bindings generator, built from the UniFFI version this crate links (the generated
//! code checks the library's contract version when it loads).
#![forbid(unsafe_code)]

fn main() {
    uniffi::uniffi_bindgen_main();
}
