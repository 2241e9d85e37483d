//! The core's `tracing` events, forwarded to Python's `logging` (logger
//! `py_code_mode`), so a Python user sees what the command line prints on
//! stderr: an embedding model that could not load (search stays lexical), a
//! tool definition that does not parse, a worker that crashed.
//!
//! Installed when the first `Session` is created, not at import: the console
//! scripts run the command line in this process, and it logs to stderr itself.
//! `PY_CODE_MODE_LOG` filters events before they reach Python (default `warn`),
//! so nothing takes the GIL on a hot path.

use std::fmt::Write as _;
use std::sync::Once;

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// The environment variable the command line reads too.
const PY_CODE_MODE_LOG: &str = "PY_CODE_MODE_LOG";

/// Installs the bridge once per process; a subscriber someone else installed wins.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env(PY_CODE_MODE_LOG)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(PythonLogging)
            .try_init();
    });
}

struct PythonLogging;

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Message::default();
        event.record(&mut text);
        let method = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG | Level::TRACE => "debug",
        };
        // `try_attach`: an event during interpreter shutdown is dropped, not a crash.
        let _ = Python::try_attach(|py| -> PyResult<()> {
            py.import("logging")?
                .call_method1("getLogger", ("py_code_mode",))?
                .call_method1(method, ("%s", text.0))?;
            Ok(())
        });
    }
}

/// The event's message, then its other fields as `key=value`.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{fields}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}
