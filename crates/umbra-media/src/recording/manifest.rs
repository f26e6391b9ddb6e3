//! `recording.json`: what the recorder wrote, rewritten whole (temp file + rename) each time a
//! file is finished, so a reader never sees it half-written and a crash loses at most the
//! entries of files still open.

use std::path::{Path, PathBuf};

use super::stream::StreamSummary;

pub const FILE_NAME: &str = "recording.json";

#[derive(Debug, serde::Serialize)]
struct Manifest<'a> {
    session_id: &'a str,
    files: &'a [StreamSummary],
}

pub fn write(dir: &Path, session_id: &str, files: &[StreamSummary]) -> std::io::Result<PathBuf> {
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
    let body = serde_json::to_vec_pretty(&Manifest { session_id, files }).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
