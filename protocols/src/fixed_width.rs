//! Fixed-width record layouts described as data.
