//! Skiff's node agent (being written). An ordinary API client; it must never touch the
//! store or depend on the apiserver crate.
