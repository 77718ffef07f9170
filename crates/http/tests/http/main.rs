//! Tests of the HTTP layer on its own: the real router over a real core (SQLite, from the test
//! kit), served on port 0. One test binary for the crate; the tests of the whole application
//! live with the server crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod layering;
mod surfaces;
