//! Log set-up: one subscriber for the whole process.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable `key=value` lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs the process-wide subscriber. `RUST_LOG` wins over `level` so operators can
/// raise one module's verbosity without a config change. Calling it twice is harmless.
///
/// rustls is kept to errors by default: it warns once per handshake about things clients
/// do (an IP address in SNI), which would let any client write to the operator's logs.
///
/// With `file`, every line also goes to that file.
pub fn init_logging(format: LogFormat, level: &str, file: Option<std::fs::File>) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{level},rustls=error")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal, never into a file.
    let ansi = file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let file = file.map(std::sync::Arc::new);
    let writer = move || -> Box<dyn std::io::Write> {
        match &file {
            Some(file) => Box::new(Tee(file.clone())),
            None => Box::new(std::io::stderr()),
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Writes each log line to stderr and to the log file.
struct Tee(std::sync::Arc<std::fs::File>);

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        (&*self.0).write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.0).flush()
    }
}
