//! HTTP tests of Portcullis: the real router, real HTTP, a fresh database per test, every
//! scenario on SQLite and on PostgreSQL. One test binary for the crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admin;
mod avatars;
mod browser;
mod cli;
mod credentials;
mod dialect_buddycloud;
mod dialect_metrixstream;
mod dialect_newspark;
mod dialect_ossn;
mod dialect_siberian;
mod dialects;
mod docs;
mod errors;
mod invariants;
mod journeys;
mod login;
mod mail;
mod me;
mod migration;
mod ops;
mod pages;
mod races;
mod second_factor;
mod sessions;
mod signup;
mod slow_clients;
mod tenants;
