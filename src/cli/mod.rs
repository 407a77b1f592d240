//! One thin module per command: parse flags, call a library, print or write.
pub mod common;
pub mod dataset;
pub mod generate;
pub mod inspect;
pub mod run;
