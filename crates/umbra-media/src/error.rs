use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MediaCliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Client(#[from] umbra_client::ClientError),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot create a session at {url}: {message}")]
    SessionCreate { url: String, message: String },
    #[error("disconnected: {0}")]
    Disconnected(String),
    #[error(transparent)]
    Recording(#[from] crate::recording::container::ContainerError),
    /// `record` ended with streams it never could decrypt: nothing of them was written.
    #[error("{0}")]
    NotRecorded(String),
}

impl MediaCliError {
    pub fn file(path: &std::path::Path, message: impl ToString) -> Self {
        MediaCliError::File { path: path.to_owned(), message: message.to_string() }
    }
}
