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
}

impl MediaCliError {
    pub fn file(path: &std::path::Path, message: impl ToString) -> Self {
        MediaCliError::File { path: path.to_owned(), message: message.to_string() }
    }
}
