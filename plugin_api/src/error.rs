//! Typed errors that cross the plugin boundary.
//!
//! A [`PluginError`] is a numeric [`ErrorCode`] plus a message. The code is a plain `u32` on the
//! wire so a host can receive codes added by a newer plugin (they read as
//! [`ErrorCode::Unknown`] with the number kept in the message). When an error has to travel
//! inside a DataFusion error (UDF invocation, planning), its text starts with a stable tag such
//! as `[E0005 invalid_config]` so that hosts and conformance suites can still match on the code.

use std::fmt;

use abi_stable::std_types::RString;
use abi_stable::StableAbi;
use datafusion::error::DataFusionError;

/// Stable error codes. Never renumber; only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// A code this side does not know (sent by a newer peer).
    Unknown = 0,
    /// A bug or broken invariant inside the plugin.
    Internal = 1,
    /// Plugin code panicked; the panic was caught at the boundary.
    Panic = 2,
    /// Install options (JSON) were malformed or named an unknown key.
    InvalidOptions = 3,
    /// A configuration key under the plugin's namespace is unknown or has a bad value.
    InvalidConfig = 4,
    /// A function received a value it cannot process (checked at execution time).
    InvalidArgument = 5,
    /// Planning failed: wrong argument count or types (checked at plan time).
    Plan = 6,
    /// Execution failed for another reason.
    Execution = 7,
    /// The host asked for an object the plugin does not export.
    UnknownObject = 8,
    /// The request is valid but this plugin or host cannot do it.
    Unsupported = 9,
    /// A policy rule denied the statement.
    PolicyViolation = 10,
    /// Reading or writing storage failed.
    Io = 11,
    /// A table, version or file was not found.
    NotFound = 12,
    /// Stored data contradicts its own metadata (a data file whose column types differ from
    /// the table's schema, a damaged file): reading on would return wrong values.
    CorruptData = 13,
}

impl ErrorCode {
    /// Every known code, in numeric order.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::Unknown,
        ErrorCode::Internal,
        ErrorCode::Panic,
        ErrorCode::InvalidOptions,
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidArgument,
        ErrorCode::Plan,
        ErrorCode::Execution,
        ErrorCode::UnknownObject,
        ErrorCode::Unsupported,
        ErrorCode::PolicyViolation,
        ErrorCode::Io,
        ErrorCode::NotFound,
        ErrorCode::CorruptData,
    ];

    pub fn from_u32(code: u32) -> ErrorCode {
        Self::ALL.iter().copied().find(|c| *c as u32 == code).unwrap_or(ErrorCode::Unknown)
    }

    /// The snake_case name used in messages and conformance suites.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::Unknown => "unknown",
            ErrorCode::Internal => "internal",
            ErrorCode::Panic => "panic",
            ErrorCode::InvalidOptions => "invalid_options",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Plan => "plan",
            ErrorCode::Execution => "execution",
            ErrorCode::UnknownObject => "unknown_object",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::PolicyViolation => "policy_violation",
            ErrorCode::Io => "io",
            ErrorCode::NotFound => "not_found",
            ErrorCode::CorruptData => "corrupt_data",
        }
    }

    pub fn from_name(name: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// The tag that starts the text of an error carrying this code, e.g. `[E0005 invalid_argument]`.
    pub fn tag(self) -> String {
        format!("[E{:04} {}]", self as u32, self.name())
    }

    /// Finds the code tag in an error text produced by [`PluginError`]'s `Display`, even when
    /// DataFusion has wrapped it in context.
    pub fn find_in(text: &str) -> Option<ErrorCode> {
        let start = text.find("[E")?;
        let rest = &text[start + 2..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse::<u32>().ok().map(ErrorCode::from_u32)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error returned across the boundary: a code and a message.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct PluginError {
    code: u32,
    message: RString,
}

impl PluginError {
    /// An error with `code`. Credentials inside URLs in `message` (`s3://KEY:SECRET@bucket`,
    /// `?X-Amz-Signature=...`) are redacted: errors travel to logs, terminals and other
    /// processes, and secrets never do.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = match crate::redact::redact_urls(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(redacted) => redacted,
        };
        Self { code: code as u32, message: RString::from(message) }
    }

    pub fn code(&self) -> ErrorCode {
        ErrorCode::from_u32(self.code)
    }

    /// The raw code number, kept even when this side does not know it.
    pub fn raw_code(&self) -> u32 {
        self.code
    }

    pub fn message(&self) -> &str {
        self.message.as_str()
    }

    /// The same message under another code.
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code as u32;
        self
    }

    /// Converts a DataFusion error raised inside plugin code, keeping a code tag already
    /// present in its text (so a plugin error survives a round trip through DataFusion).
    pub fn from_datafusion(err: &DataFusionError, fallback: ErrorCode) -> Self {
        let text = err.to_string();
        let code = ErrorCode::find_in(&text).unwrap_or(fallback);
        Self::new(code, text)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A message that already carries a tag (re-wrapped error) is not tagged twice.
        if ErrorCode::find_in(self.message.as_str()).is_some() {
            f.write_str(self.message.as_str())
        } else if self.code() == ErrorCode::Unknown {
            write!(f, "[E{:04} unknown] {}", self.code, self.message)
        } else {
            write!(f, "{} {}", self.code().tag(), self.message)
        }
    }
}

impl fmt::Debug for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PluginError {}

impl From<PluginError> for DataFusionError {
    fn from(err: PluginError) -> Self {
        match err.code() {
            ErrorCode::Plan => DataFusionError::Plan(err.to_string()),
            ErrorCode::InvalidConfig | ErrorCode::InvalidOptions => {
                DataFusionError::Configuration(err.to_string())
            }
            ErrorCode::Unsupported => DataFusionError::NotImplemented(err.to_string()),
            _ => DataFusionError::Execution(err.to_string()),
        }
    }
}

/// Shorthand for building a `DataFusionError` that carries a plugin error code.
pub fn df_error(code: ErrorCode, message: impl Into<String>) -> DataFusionError {
    PluginError::new(code, message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_survives_datafusion_wrapping() {
        let df: DataFusionError = PluginError::new(ErrorCode::InvalidArgument, "bad col").into();
        let wrapped = df.context("while running query");
        assert_eq!(ErrorCode::find_in(&wrapped.to_string()), Some(ErrorCode::InvalidArgument));
        let back = PluginError::from_datafusion(&wrapped, ErrorCode::Execution);
        assert_eq!(back.code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn unknown_codes_keep_their_number() {
        let e = PluginError { code: 999, message: "x".into() };
        assert_eq!(e.code(), ErrorCode::Unknown);
        assert!(e.to_string().contains("E0999"));
    }

    #[test]
    fn names_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.name()), Some(code));
            assert_eq!(ErrorCode::from_u32(code as u32), code);
        }
    }
}
