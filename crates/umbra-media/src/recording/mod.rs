//! `umbra-media record`'s machinery, kept apart from the command's event loop: per-stream files
//! ([`stream`]), their containers ([`container`]), time ([`timeline`]), ordering
//! ([`interleave`]) and the few header fields read from clear frames ([`bitstream`]).

pub mod bitstream;
pub mod container;
pub mod interleave;
pub mod manifest;
pub mod stream;
pub mod timeline;
