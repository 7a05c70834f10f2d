//! Forwarding plugin `tracing` events to the host.
//!
//! A cdylib carries its own copy of `tracing`, with its own global dispatcher, so events the
//! plugin emits would be lost. The host hands the plugin a [`LogSink`] (a C callback) right
//! after loading; the plugin installs a small subscriber in its own `tracing` copy that formats
//! each event and passes it to the callback, and the host re-emits it into its own subscriber.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Once, RwLock};

use abi_stable::std_types::RStr;
use abi_stable::StableAbi;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// A host callback receiving formatted plugin events.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct LogSink {
    /// `level`: 1 error, 2 warn, 3 info, 4 debug, 5 trace.
    pub log: extern "C" fn(level: u8, target: RStr<'_>, message: RStr<'_>),
    /// Most verbose level forwarded (same numbering).
    pub max_level: u8,
}

pub fn level_to_u8(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

static SINK: RwLock<Option<LogSink>> = RwLock::new(None);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static INSTALL: Once = Once::new();

/// Installs (or replaces) the sink. Called by the exported root module, i.e. only inside a
/// dynamically loaded plugin image, never in a host that links the plugin as an rlib.
pub fn set_sink(sink: LogSink) {
    if let Ok(mut slot) = SINK.write() {
        *slot = Some(sink);
    }
    MAX_LEVEL.store(sink.max_level, Ordering::Relaxed);
    INSTALL.call_once(|| {
        // Fails only if this image already has a global subscriber; then events go there.
        let _ = tracing::subscriber::set_global_default(SinkSubscriber { next_span: AtomicU64::new(1) });
    });
}

struct SinkSubscriber {
    next_span: AtomicU64,
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl Subscriber for SinkSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_to_u8(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let Ok(slot) = SINK.read() else { return };
        let Some(sink) = *slot else { return };
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let text = format!("{}{}", visitor.message, visitor.fields);
        // Table locations in events may carry credentials: they never reach the host's logs.
        let text = crate::redact::redact_urls(&text);
        let metadata = event.metadata();
        (sink.log)(level_to_u8(metadata.level()), RStr::from_str(metadata.target()), RStr::from_str(&text));
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}
