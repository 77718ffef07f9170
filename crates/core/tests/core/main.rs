//! Tests of the core through its public operations, on a real store (SQLite from the test
//! kit), with a double in place of exactly the part of the store a test needs to control.
//! One test binary for the crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod feed;
mod permissions;
