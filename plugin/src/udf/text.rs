//! Text canonicalization: `utf8_normalize`, `utf8_null_if_blank`, `qname_normalize`.
//!
//! Identifiers and names extracted by different parsers differ in Unicode normal form, case
//! and whitespace; joining them requires one canonical form. Pure-ASCII values (the vast
//! majority of code) take fast paths that skip the Unicode machinery, since every normal form
//! is the identity on ASCII.

use std::sync::LazyLock;

use caseless::Caseless;
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::compute::nullif;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use unicode_normalization::{
    is_nfc_quick, is_nfd_quick, is_nfkc_quick, is_nfkd_quick, IsNormalized, UnicodeNormalization,
};

use crate::config::{CodeAnatomyConfig, NormalForm};

use super::args::{
    bool_arg, build_doc, coerce_positional, finish, internal, invalid_arg, output_shape,
    string_arg, BoolView, Coercer, StrView, Utf8Out,
};

const SECTION: &str = "CodeAnatomy: text";

// ---------------------------------------------------------------------------------------
// utf8_normalize

fn parse_form(func: &str, text: &str) -> Result<NormalForm> {
    NormalForm::parse(text)
        .ok_or_else(|| invalid_arg(func, format!("unknown normal form {text:?}; allowed forms are NFC, NFD, NFKC, NFKD (any case)")))
}

fn is_normalized(form: NormalForm, text: &str) -> bool {
    let quick = match form {
        NormalForm::Nfc => is_nfc_quick(text.chars()),
        NormalForm::Nfd => is_nfd_quick(text.chars()),
        NormalForm::Nfkc => is_nfkc_quick(text.chars()),
        NormalForm::Nfkd => is_nfkd_quick(text.chars()),
    };
    quick == IsNormalized::Yes
}

fn normalize_into(form: NormalForm, text: &str, out: &mut String) {
    out.clear();
    match form {
        NormalForm::Nfc => out.extend(text.nfc()),
        NormalForm::Nfd => out.extend(text.nfd()),
        NormalForm::Nfkc => out.extend(text.nfkc()),
        NormalForm::Nfkd => out.extend(text.nfkd()),
    }
}

/// Reusable buffers so that normalizing a column allocates only for its output.
#[derive(Default)]
pub struct Normalizer {
    a: String,
    b: String,
    c: String,
}

impl Normalizer {
    /// Normal form, then (optionally) full case folding re-normalized to the same form (folding
    /// maps to sequences that need not be in the requested form), then (optionally) whitespace runs
    /// collapsed to one space and trimmed.
    pub fn normalize<'s>(&'s mut self, text: &'s str, form: NormalForm, casefold: bool, collapse_ws: bool) -> &'s str {
        // Which buffer holds the current result; borrowing through an index (rather than a
        // `&str` kept across steps) lets later steps reuse the buffers.
        #[derive(Clone, Copy, PartialEq)]
        enum Slot {
            Input,
            A,
            B,
            C,
        }
        let mut slot = Slot::Input;
        if text.is_ascii() {
            if casefold && text.bytes().any(|b| b.is_ascii_uppercase()) {
                self.a.clear();
                self.a.push_str(text);
                self.a.make_ascii_lowercase();
                slot = Slot::A;
            }
        } else {
            if !is_normalized(form, text) {
                normalize_into(form, text, &mut self.a);
                slot = Slot::A;
            }
            if casefold {
                let Normalizer { a, b, .. } = self;
                let source: &str = if slot == Slot::A { a.as_str() } else { text };
                b.clear();
                b.extend(source.chars().default_case_fold());
                if is_normalized(form, b) {
                    slot = Slot::B;
                } else {
                    normalize_into(form, b, a);
                    slot = Slot::A;
                }
            }
        }
        if collapse_ws {
            let Normalizer { a, b, c } = self;
            let source: &str = match slot {
                Slot::Input | Slot::C => text,
                Slot::A => a.as_str(),
                Slot::B => b.as_str(),
            };
            if needs_collapse(source) {
                c.clear();
                for word in source.split_whitespace() {
                    if !c.is_empty() {
                        c.push(' ');
                    }
                    c.push_str(word);
                }
                slot = Slot::C;
            }
        }
        match slot {
            Slot::Input => text,
            Slot::A => self.a.as_str(),
            Slot::B => self.b.as_str(),
            Slot::C => self.c.as_str(),
        }
    }
}

/// Whether collapsing would change anything: leading/trailing whitespace, a run, or any
/// whitespace other than a plain space.
fn needs_collapse(text: &str) -> bool {
    let mut previous_space = true; // leading whitespace must go
    for ch in text.chars() {
        if ch.is_whitespace() {
            if previous_space || ch != ' ' {
                return true;
            }
            previous_space = true;
        } else {
            previous_space = false;
        }
    }
    previous_space && !text.is_empty()
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Utf8Normalize {
    signature: Signature,
}

impl Default for Utf8Normalize {
    fn default() -> Self {
        // Stable: the default form comes from the session configuration.
        Self { signature: Signature::user_defined(Volatility::Stable) }
    }
}

static UTF8_NORMALIZE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Canonicalizes text: Unicode normalization to form (NFC, NFD, NFKC or NFKD; default the \
         session setting codeanatomy.normalize.form, itself NFKC by default); then, when casefold \
         is true, full Unicode case folding as Python's str.casefold ('ß' -> 'ss') followed by \
         re-normalization; then, when collapse_ws is true, every run of Unicode whitespace becomes \
         one space and the ends are trimmed. casefold and collapse_ws default to false.",
        "utf8_normalize(s: Utf8 [, form: Utf8 [, casefold: Boolean [, collapse_ws: Boolean]]]) -> Utf8",
        "SELECT utf8_normalize('  Stra\u{df}e\u{2003} ｘ ', 'NFKC', true, true) AS normalized",
        &[
            ("s", "Text to normalize."),
            ("form", "NFC, NFD, NFKC or NFKD (any case)."),
            ("casefold", "Apply full Unicode case folding."),
            ("collapse_ws", "Collapse whitespace runs to one space and trim."),
        ],
    )
});

const UTF8_NORMALIZE_EXPECTED: &str = "(s string [, form string [, casefold boolean [, collapse_ws boolean]]])";

impl ScalarUDFImpl for Utf8Normalize {
    fn name(&self) -> &str {
        "utf8_normalize"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const COERCERS: [Coercer; 4] = [string_arg, string_arg, bool_arg, bool_arg];
        coerce_positional(self.name(), UTF8_NORMALIZE_EXPECTED, arg_types, 1, &COERCERS)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let (rows, all_scalar) = output_shape(&args.args, args.number_rows);
        let texts = match args.args.first() {
            Some(a) => StrView::new(name, a)?,
            None => return Err(internal(name, "called without arguments")),
        };
        let forms = match args.args.get(1) {
            Some(a) => StrView::new(name, a)?,
            None => StrView::Const(None),
        };
        // A literal (or omitted) form is resolved once per batch.
        let fixed_form = match (args.args.get(1), forms.as_const()) {
            (None, _) => Some(Some(CodeAnatomyConfig::from_config_options(&args.config_options)?.normalize_form)),
            (Some(_), Some(None)) => Some(None),
            (Some(_), Some(Some(text))) => Some(Some(parse_form(name, text)?)),
            (Some(_), None) => None,
        };
        let casefolds = match args.args.get(2) {
            Some(a) => BoolView::new(name, a)?,
            None => BoolView::Const(Some(false)),
        };
        let collapses = match args.args.get(3) {
            Some(a) => BoolView::new(name, a)?,
            None => BoolView::Const(Some(false)),
        };
        let capacity = match texts {
            StrView::Utf8(a) => a.value_data().len(),
            StrView::Large(a) => a.value_data().len(),
            _ => rows * 16,
        };
        let mut out = Utf8Out::with_capacity(rows, capacity);
        let mut normalizer = Normalizer::default();
        for row in 0..rows {
            let form = match fixed_form {
                Some(form) => form,
                None => forms.get(row).map(|t| parse_form(name, t)).transpose()?,
            };
            match (texts.get(row), form, casefolds.get(row), collapses.get(row)) {
                (Some(text), Some(form), Some(casefold), Some(collapse)) => {
                    out.push(name, normalizer.normalize(text, form, casefold, collapse))?
                }
                _ => out.push_null(),
            }
        }
        finish(out.finish(), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&UTF8_NORMALIZE_DOC)
    }
}

// ---------------------------------------------------------------------------------------
// utf8_null_if_blank

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Utf8NullIfBlank {
    signature: Signature,
}

impl Default for Utf8NullIfBlank {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static UTF8_NULL_IF_BLANK_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "NULL when the text is empty or only Unicode whitespace, otherwise the text unchanged \
         (same string type as the input).",
        "utf8_null_if_blank(s: Utf8) -> Utf8",
        "SELECT utf8_null_if_blank(' \t ') AS a, utf8_null_if_blank(' x ') AS b",
        &[("s", "Text to test.")],
    )
});

impl ScalarUDFImpl for Utf8NullIfBlank {
    fn name(&self) -> &str {
        "utf8_null_if_blank"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const COERCERS: [Coercer; 1] = [string_arg];
        coerce_positional(self.name(), "(s string)", arg_types, 1, &COERCERS)
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Utf8))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let (_, all_scalar) = output_shape(&args.args, args.number_rows);
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(array) = arrays.first() else {
            return Err(internal(name, "called without arguments"));
        };
        let texts = StrView::from_array(name, array.as_ref())?;
        // Only the validity changes, so the string data is shared, not copied.
        let blank: BooleanArray = (0..array.len())
            .map(|row| Some(texts.get(row).is_some_and(|t| t.trim().is_empty())))
            .collect();
        let result: ArrayRef = nullif(array.as_ref(), &blank)?;
        finish(result, all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&UTF8_NULL_IF_BLANK_DOC)
    }
}

// ---------------------------------------------------------------------------------------
// qname_normalize

/// How one language writes qualified names.
#[derive(Debug)]
struct QnameRules {
    names: &'static [&'static str],
    /// Separators rewritten to '.', longest first so `::` wins over `:`.
    separators: &'static [&'static str],
    /// File suffixes dropped from the module (modules are often given as paths).
    module_suffixes: &'static [&'static str],
    /// A trailing module segment that names the package itself (`pkg/__init__.py` is `pkg`).
    package_marker: Option<&'static str>,
    /// Whether the language's identifiers are case-insensitive (then they are lower-cased).
    case_insensitive: bool,
}

const QNAME_RULES: &[QnameRules] = &[
    QnameRules {
        names: &["python", "py"],
        separators: &["/", "\\", ":", "."],
        module_suffixes: &[".py", ".pyi"],
        package_marker: Some("__init__"),
        case_insensitive: false,
    },
    QnameRules {
        names: &["rust", "rs"],
        separators: &["::", "/", "."],
        module_suffixes: &[".rs"],
        package_marker: Some("mod"),
        case_insensitive: false,
    },
    QnameRules {
        names: &["cpp", "c++", "c"],
        separators: &["::", "/", "."],
        module_suffixes: &[".hpp", ".hh", ".h", ".cpp", ".cc", ".cxx", ".c"],
        package_marker: None,
        case_insensitive: false,
    },
    QnameRules {
        names: &["java", "kotlin", "scala"],
        separators: &["/", "$", "."],
        module_suffixes: &[".java", ".kt", ".scala", ".class"],
        package_marker: None,
        case_insensitive: false,
    },
    QnameRules {
        names: &["javascript", "js", "typescript", "ts"],
        separators: &["/", "\\", "#", "."],
        module_suffixes: &[".d.ts", ".tsx", ".ts", ".jsx", ".mjs", ".cjs", ".js"],
        package_marker: Some("index"),
        case_insensitive: false,
    },
    QnameRules {
        names: &["go"],
        separators: &["/", "."],
        module_suffixes: &[".go"],
        package_marker: None,
        case_insensitive: false,
    },
    QnameRules {
        names: &["csharp", "c#", "cs"],
        separators: &["::", "/", "+", "."],
        module_suffixes: &[".cs"],
        package_marker: None,
        case_insensitive: false,
    },
    QnameRules {
        names: &["ruby", "rb"],
        separators: &["::", "/", "#", "."],
        module_suffixes: &[".rb"],
        package_marker: None,
        case_insensitive: false,
    },
    QnameRules {
        names: &["php"],
        separators: &["::", "->", "\\", "/", "."],
        module_suffixes: &[".php"],
        package_marker: None,
        case_insensitive: false,
    },
    QnameRules {
        names: &["sql"],
        separators: &["."],
        module_suffixes: &[".sql"],
        package_marker: None,
        case_insensitive: true,
    },
];

fn allowed_langs() -> String {
    QNAME_RULES.iter().flat_map(|r| r.names.iter().copied()).collect::<Vec<_>>().join(", ")
}

fn qname_rules(func: &str, lang: &str) -> Result<&'static QnameRules> {
    let wanted = lang.trim().to_ascii_lowercase();
    QNAME_RULES
        .iter()
        .find(|r| r.names.contains(&wanted.as_str()))
        .ok_or_else(|| invalid_arg(func, format!("unknown lang {lang:?}; allowed values are {}", allowed_langs())))
}

/// Splits a name into its segments under `rules`, appending them to `segments`.
fn push_segments(text: &str, rules: &QnameRules, is_module: bool, scratch: &mut String, segments: &mut Vec<String>) {
    scratch.clear();
    scratch.extend(text.chars().filter(|c| !c.is_whitespace()));
    if is_module {
        if let Some(suffix) = rules.module_suffixes.iter().find(|s| scratch.ends_with(**s) && scratch.len() > s.len()) {
            scratch.truncate(scratch.len() - suffix.len());
        }
    }
    if rules.case_insensitive {
        *scratch = scratch.to_lowercase();
    }
    let start = segments.len();
    let mut rest = scratch.as_str();
    let mut current = String::new();
    'outer: while !rest.is_empty() {
        for sep in rules.separators {
            if let Some(after) = rest.strip_prefix(sep) {
                if !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                }
                rest = after;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(ch) = chars.next() {
            current.push(ch);
        }
        rest = chars.as_str();
    }
    if !current.is_empty() {
        segments.push(current);
    }
    if is_module {
        if let Some(marker) = rules.package_marker {
            if segments.len() > start + 1 && segments.last().is_some_and(|s| s == marker) {
                segments.pop();
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QnameNormalize {
    signature: Signature,
}

impl Default for QnameNormalize {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static QNAME_NORMALIZE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Canonical dotted qualified name of a symbol. Rules: all whitespace is removed; each \
         language's separators become '.' (python: / \\ : .; rust: :: / .; cpp/c: :: / .; \
         java/kotlin/scala: / $ .; javascript/typescript: / \\ # .; go: / .; csharp: :: / + .; \
         ruby: :: / # .; php: :: -> \\ / .; sql: .); empty segments are dropped (so runs of \
         separators collapse and leading/trailing ones vanish). The module, when given, may be a \
         path: a file suffix of the language is dropped (.py, .rs, .ts, ...) and a trailing \
         package file segment names its package (python __init__, rust mod, javascript index). \
         The module is prepended unless the symbol already starts with it. Case is kept, except \
         for sql (case-insensitive, lower-cased). lang defaults to 'python' and is \
         case-insensitive; an unknown lang is an error listing the allowed values. A NULL module \
         means no module; a NULL symbol or lang gives NULL.",
        "qname_normalize(symbol: Utf8 [, module: Utf8 [, lang: Utf8]]) -> Utf8",
        "SELECT qname_normalize('Parser.parse', 'pkg/parser/__init__.py') AS py, qname_normalize('Vec :: new', 'alloc::vec', 'rust') AS rs",
        &[
            ("symbol", "The symbol, possibly already qualified."),
            ("module", "The module (or file path) containing the symbol."),
            ("lang", "One of python, rust, cpp, c, java, kotlin, scala, javascript, typescript, go, csharp, ruby, php, sql (or their short forms py, rs, c++, js, ts, c#, cs, rb)."),
        ],
    )
});

const QNAME_EXPECTED: &str = "(symbol string [, module string [, lang string]])";

impl ScalarUDFImpl for QnameNormalize {
    fn name(&self) -> &str {
        "qname_normalize"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const COERCERS: [Coercer; 3] = [string_arg, string_arg, string_arg];
        coerce_positional(self.name(), QNAME_EXPECTED, arg_types, 1, &COERCERS)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let (rows, all_scalar) = output_shape(&args.args, args.number_rows);
        let symbols = StrView::optional(name, &args.args, 0)?.ok_or_else(|| internal(name, "called without arguments"))?;
        let modules = StrView::optional(name, &args.args, 1)?.unwrap_or(StrView::Const(None));
        let langs = StrView::optional(name, &args.args, 2)?.unwrap_or(StrView::Const(Some("python")));
        let fixed_rules = match langs.as_const() {
            Some(Some(lang)) => Some(Some(qname_rules(name, lang)?)),
            Some(None) => Some(None),
            None => None,
        };
        let mut out = Utf8Out::with_capacity(rows, rows * 24);
        let mut scratch = String::new();
        let mut module_segments: Vec<String> = Vec::new();
        let mut symbol_segments: Vec<String> = Vec::new();
        let mut joined = String::new();
        for row in 0..rows {
            let rules = match fixed_rules {
                Some(rules) => rules,
                None => langs.get(row).map(|l| qname_rules(name, l)).transpose()?,
            };
            let (Some(symbol), Some(rules)) = (symbols.get(row), rules) else {
                out.push_null();
                continue;
            };
            module_segments.clear();
            symbol_segments.clear();
            if let Some(module) = modules.get(row) {
                push_segments(module, rules, true, &mut scratch, &mut module_segments);
            }
            push_segments(symbol, rules, false, &mut scratch, &mut symbol_segments);
            let already_qualified = !module_segments.is_empty() && symbol_segments.starts_with(&module_segments);
            joined.clear();
            let prefix: &[String] = if already_qualified { &[] } else { &module_segments };
            for segment in prefix.iter().chain(symbol_segments.iter()) {
                if !joined.is_empty() {
                    joined.push('.');
                }
                joined.push_str(segment);
            }
            out.push(name, &joined)?;
        }
        finish(out.finish(), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&QNAME_NORMALIZE_DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_detection() {
        assert!(!needs_collapse("a b"));
        assert!(needs_collapse(" a"));
        assert!(needs_collapse("a "));
        assert!(needs_collapse("a  b"));
        assert!(needs_collapse("a\tb"));
        assert!(!needs_collapse(""));
    }

    #[test]
    fn normalizer_paths() {
        let mut n = Normalizer::default();
        assert_eq!(n.normalize("ABC", NormalForm::Nfc, true, false), "abc");
        assert_eq!(n.normalize("Straße", NormalForm::Nfkc, true, false), "strasse");
        assert_eq!(n.normalize("e\u{301}", NormalForm::Nfc, false, false), "\u{e9}");
        assert_eq!(n.normalize("\u{e9}", NormalForm::Nfd, false, false), "e\u{301}");
        assert_eq!(n.normalize(" a \u{3000} b ", NormalForm::Nfc, false, true), "a b");
    }

    fn qname(symbol: &str, module: Option<&str>, lang: &str) -> String {
        let rules = qname_rules("t", lang).unwrap();
        let mut scratch = String::new();
        let mut m = Vec::new();
        let mut s = Vec::new();
        if let Some(module) = module {
            push_segments(module, rules, true, &mut scratch, &mut m);
        }
        push_segments(symbol, rules, false, &mut scratch, &mut s);
        if !m.is_empty() && s.starts_with(&m) {
            m.clear();
        }
        m.extend(s);
        m.join(".")
    }

    #[test]
    fn qnames() {
        assert_eq!(qname("Parser.parse", Some("pkg/parser/__init__.py"), "python"), "pkg.parser.Parser.parse");
        assert_eq!(qname("pkg.mod.f", Some("pkg.mod"), "py"), "pkg.mod.f");
        assert_eq!(qname("Vec :: new", Some("alloc::vec"), "rust"), "alloc.vec.Vec.new");
        assert_eq!(qname("::std::string", None, "cpp"), "std.string");
        assert_eq!(qname("Outer$Inner", Some("java/util"), "java"), "java.util.Outer.Inner");
        assert_eq!(qname("Users", Some("DBO"), "sql"), "dbo.users");
        assert_eq!(qname("Foo#bar", Some("src/foo.ts"), "ts"), "src.foo.Foo.bar");
    }
}
