//! Jepsen-style fault testing for taskraft (work in progress).
