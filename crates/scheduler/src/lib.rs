//! Skiff's scheduler (being written): binds pending pods to nodes through `pods/binding`.
//! An ordinary API client; it must never touch the store or depend on the apiserver crate.
