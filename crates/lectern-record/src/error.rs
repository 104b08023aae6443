use std::path::PathBuf;

/// Why a recording could not be written, read or recovered.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The folder already holds a recording (a manifest); the writer never overwrites one.
    #[error("{0} already holds a recording")]
    AlreadyExists(PathBuf),
    #[error("invalid manifest {path}: {reason}")]
    InvalidManifest { path: PathBuf, reason: String },
    #[error("manifest version {0} is not supported")]
    UnsupportedVersion(u32),
    #[error("invalid writer configuration: {0}")]
    Config(String),
    /// The writer thread panicked (a bug: the writer is meant never to).
    #[error("the writer thread panicked")]
    WriterPanicked,
    /// The export's muxer (libwebm) refused a frame or could not finish the file.
    #[error("muxing {path}: {reason}")]
    Mux { path: PathBuf, reason: String },
    /// The Opus encoder or a decoder could not be set up or failed (a bug, not bad input:
    /// undecodable packets are skipped).
    #[error("opus codec: {0}")]
    Codec(String),
}

impl RecordError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RecordError::Io {
            action,
            path,
            source,
        }
    }

    /// A stable, short code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::Io { .. } => "io",
            RecordError::AlreadyExists(_) => "already_exists",
            RecordError::InvalidManifest { .. } => "invalid_manifest",
            RecordError::UnsupportedVersion(_) => "unsupported_version",
            RecordError::Config(_) => "config",
            RecordError::WriterPanicked => "writer_panicked",
            RecordError::Mux { .. } => "mux",
            RecordError::Codec(_) => "codec",
        }
    }
}
