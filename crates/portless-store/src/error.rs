//! The store's error type.

use std::path::PathBuf;

use uuid::Uuid;

use crate::HostnameError;

/// Why a store operation failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store file or its directory could not be created or opened for writing.
    #[error(
        "the store file {} is not writable: {source}: check the path and that the user running Portless owns the file and its directory",
        path.display()
    )]
    FileAccess {
        /// The store file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error(
        "cannot open the store database {}: {source}: check that it is a Portless store file and that no other program keeps it locked",
        path.display()
    )]
    Open {
        /// The store file, or `:memory:`.
        path: PathBuf,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migrations failed.
    #[error(
        "cannot bring the store schema up to date: {0}: if a newer Portless wrote this store, run that version"
    )]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("store query failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The database holds a value this code cannot read back.
    #[error(
        "the store holds an invalid {what}: the database was edited by hand or is damaged; restore it from a backup"
    )]
    Corrupt {
        /// Which value, e.g. "tunnel id \"xyz\"".
        what: String,
    },
    /// The operating system's random generator failed.
    #[error("the operating system random generator failed: check the host's entropy source")]
    Random,
    /// A tunnel name breaks the naming rules.
    #[error("tunnel name \"{name}\" is invalid: {reason}")]
    InvalidTunnelName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks and how to fix it.
        reason: &'static str,
    },
    /// Another tunnel already has this name.
    #[error(
        "a tunnel named \"{name}\" already exists: choose another name, or delete the existing tunnel first"
    )]
    TunnelNameTaken {
        /// The name in use.
        name: String,
    },
    /// No tunnel has this id.
    #[error("no tunnel has id {id}: list the tunnels to find the right id")]
    TunnelNotFound {
        /// The unknown id.
        id: Uuid,
    },
    /// A route hostname is malformed.
    #[error(transparent)]
    InvalidHostname(#[from] HostnameError),
    /// Another live service token already has this name.
    #[error(
        "a service token named \"{name}\" already exists: choose another name, or revoke the existing token first"
    )]
    ServiceTokenNameTaken {
        /// The name in use.
        name: String,
    },
    /// A setting key is empty.
    #[error("a setting key cannot be empty: name the setting")]
    EmptySettingKey,
}
