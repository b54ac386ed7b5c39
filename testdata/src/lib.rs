//! Test data.
