//! RTP-level helpers of the forwarder: what it reads in a payload and how it numbers packets
//! per subscriber. Pure functions and state, no str0m connection.

pub mod dd;
pub mod keyframe;
pub mod layers;
pub mod seqmap;
pub mod vp8ids;
pub mod vp9;
