//! Authentication: password hashing (argon2id) now; tokens and roles build
//! on it.

pub mod password;
