//! The billing API's request parsing (paths, query strings, methods), with and without a valid
//! token, against a real store: no input panics or answers 500, and every error answer is the
//! API's JSON error object.
//!
//! Input: the first byte picks the method and whether the token is sent; the rest is the
//! request target (`/v1/batches/next?max=...`).
//! The checks live in `meterd::fuzz_checks`, shared with the corpus replay test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meterd::fuzz_checks::http_query(data));
