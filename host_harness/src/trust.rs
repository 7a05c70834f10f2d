//! Signed plugins: who may run code in this process.
//!
//! A signature is an ed25519 signature (RFC 8032) over a SHA-512 digest of the library file,
//! appended to the file as a fixed 120-byte trailer (dynamic loaders ignore trailing bytes):
//!
//! | offset | bytes | content |
//! |---|---|---|
//! | 0 | 8 | `DFPSIG01` |
//! | 8 | 32 | the signer's ed25519 public key |
//! | 40 | 64 | signature over `"dfplugin-signature-v1\0" ‖ SHA-512(file[..signed_length])` |
//! | 104 | 8 | `signed_length`, u64 little-endian: the file's length without the trailer |
//! | 112 | 8 | `DFPSIGND` |
//!
//! So the signature covers every byte of the file except itself, and a signed file whose
//! bytes changed (or that grew) no longer verifies. Hosts check it before any plugin code runs
//! ([`crate::load`] and the Python loader use the same format), against the process's
//! [`TrustPolicy`]: trusted public keys from trust files, and whether unsigned libraries may
//! load. The policy can be tightened but never loosened once a plugin has been loaded.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};

use crate::error::HostError;

/// Length of the signature trailer.
pub const TRAILER_LEN: usize = 120;
const START_MAGIC: &[u8; 8] = b"DFPSIG01";
const END_MAGIC: &[u8; 8] = b"DFPSIGND";
const CONTEXT: &[u8] = b"dfplugin-signature-v1\0";
/// Prefix of a public key in trust files (`ed25519:<64 hex digits>`).
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";
/// Prefix of a secret key file's line (`ed25519-secret:<64 hex digits>`).
pub const SECRET_KEY_PREFIX: &str = "ed25519-secret:";
/// Trust files (separated like `PATH`) whose keys the process trusts.
pub const TRUST_FILE_ENV: &str = "DFPLUGIN_TRUST_FILE";
/// `1` / `true`: unsigned libraries may load.
pub const ALLOW_UNSIGNED_ENV: &str = "DFPLUGIN_ALLOW_UNSIGNED";

/// An ed25519 public key a host trusts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// First 16 hex digits of SHA-256 of the key: how messages name it.
    pub fn id(&self) -> String {
        hex(&Sha256::digest(self.0)[..8])
    }

    /// The key as trust files write it.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", hex(&self.0))
    }

    /// Parses `ed25519:<64 hex digits>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex_part = text.trim().strip_prefix(PUBLIC_KEY_PREFIX).ok_or_else(|| {
            format!("expected '{PUBLIC_KEY_PREFIX}<64 hex digits>', found '{}'", text.trim())
        })?;
        let bytes = unhex32(hex_part).ok_or_else(|| format!("expected 64 hex digits after '{PUBLIC_KEY_PREFIX}'"))?;
        VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an ed25519 public key: {e}"))?;
        Ok(Self(bytes))
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// What a library file says about its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureState {
    /// No trailer.
    Unsigned,
    /// A trailer whose signature verifies for `key`.
    Valid { key: PublicKey },
    /// A trailer that does not verify: the file changed after signing, or the trailer is damaged.
    Invalid { reason: String },
}

impl SignatureState {
    /// `unsigned`, `valid` or `invalid`.
    pub fn name(&self) -> &'static str {
        match self {
            SignatureState::Unsigned => "unsigned",
            SignatureState::Valid { .. } => "valid",
            SignatureState::Invalid { .. } => "invalid",
        }
    }
}

struct Trailer {
    key: [u8; 32],
    signature: [u8; 64],
    signed_length: u64,
}

/// The trailer of `file` (of length `len`): `Ok(None)` without one, `Err` when damaged.
fn read_trailer(file: &mut File, len: u64) -> std::io::Result<Result<Option<Trailer>, String>> {
    if len < END_MAGIC.len() as u64 {
        return Ok(Ok(None));
    }
    let mut end = [0u8; 8];
    file.seek(SeekFrom::Start(len - END_MAGIC.len() as u64))?;
    file.read_exact(&mut end)?;
    if &end != END_MAGIC {
        return Ok(Ok(None));
    }
    if len < TRAILER_LEN as u64 {
        return Ok(Err("the signature trailer is damaged (the file is shorter than a signature)".into()));
    }
    let mut raw = [0u8; TRAILER_LEN];
    file.seek(SeekFrom::Start(len - TRAILER_LEN as u64))?;
    file.read_exact(&mut raw)?;
    if &raw[0..8] != START_MAGIC {
        return Ok(Err("the signature trailer is damaged (bad start marker)".into()));
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&raw[104..112]);
    let signed_length = u64::from_le_bytes(word);
    if signed_length != len - TRAILER_LEN as u64 {
        return Ok(Err(format!(
            "the signature covers {signed_length} bytes but the file has {} before its signature (bytes were added or removed)",
            len - TRAILER_LEN as u64
        )));
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&raw[8..40]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&raw[40..104]);
    Ok(Ok(Some(Trailer { key, signature, signed_length })))
}

/// SHA-512 of the first `length` bytes of `file`, streamed.
fn digest_prefix(file: &mut File, length: u64) -> std::io::Result<[u8; 64]> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha512::new();
    let mut remaining = length;
    let mut buffer = vec![0u8; 1 << 20];
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        file.read_exact(&mut buffer[..want])?;
        hasher.update(&buffer[..want]);
        remaining -= want as u64;
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(&hasher.finalize());
    Ok(out)
}

fn message(digest: &[u8; 64]) -> Vec<u8> {
    [CONTEXT, digest.as_slice()].concat()
}

/// Reads and verifies the signature of the library at `path`.
pub fn signature_state(path: &Path) -> Result<SignatureState, HostError> {
    let unreadable = |e: std::io::Error| HostError::Unreadable { path: path.to_path_buf(), reason: e.to_string() };
    let mut file = crate::inspect::check_readable(path)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let trailer = match read_trailer(&mut file, len).map_err(unreadable)? {
        Ok(Some(trailer)) => trailer,
        Ok(None) => return Ok(SignatureState::Unsigned),
        Err(reason) => return Ok(SignatureState::Invalid { reason }),
    };
    let key = match VerifyingKey::from_bytes(&trailer.key) {
        Ok(key) => key,
        Err(e) => return Ok(SignatureState::Invalid { reason: format!("the signature's public key is not valid: {e}") }),
    };
    let digest = digest_prefix(&mut file, trailer.signed_length).map_err(unreadable)?;
    let signature = Signature::from_bytes(&trailer.signature);
    match key.verify_strict(&message(&digest), &signature) {
        Ok(()) => Ok(SignatureState::Valid { key: PublicKey(trailer.key) }),
        Err(_) => Ok(SignatureState::Invalid {
            reason: format!(
                "the signature by key {} does not match the file's contents (the file changed after it was signed)",
                PublicKey(trailer.key).id()
            ),
        }),
    }
}

/// A signing key, read from a secret key file.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> std::io::Result<Self> {
        let mut seed = [0u8; 32];
        File::open("/dev/urandom")?.read_exact(&mut seed)?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Reads a key file written by [`SecretKey::write`] (`ed25519-secret:<64 hex digits>`).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read key file '{}': {e}", path.display()))?;
        let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
        let seed = line
            .strip_prefix(SECRET_KEY_PREFIX)
            .and_then(unhex32)
            .ok_or_else(|| format!("key file '{}' does not hold '{SECRET_KEY_PREFIX}<64 hex digits>'", path.display()))?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Writes the key (mode 0600) to `path` and its public key to `path` + `.pub`.
    pub fn write(&self, path: &Path) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        writeln!(file, "# dfplugin signing key: keep it secret; its public key is in {}.pub", path.display())?;
        writeln!(file, "{SECRET_KEY_PREFIX}{}", hex(&self.0.to_bytes()))?;
        let public = PathBuf::from(format!("{}.pub", path.display()));
        std::fs::write(&public, format!("{}  # dfplugin key {}\n", self.public().to_text(), self.public().id()))?;
        Ok(public)
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
}

/// Signs the library at `library` and writes the signed file to `out` (which may be
/// `library`). An existing signature is replaced.
pub fn sign_library(library: &Path, key: &SecretKey, out: &Path) -> Result<PublicKey, String> {
    let shown = library.display();
    let mut file = File::open(library).map_err(|e| format!("cannot read '{shown}': {e}"))?;
    let len = file.metadata().map_err(|e| format!("cannot read '{shown}': {e}"))?.len();
    let content_len = match read_trailer(&mut file, len).map_err(|e| format!("cannot read '{shown}': {e}"))? {
        Ok(Some(trailer)) => trailer.signed_length,
        Ok(None) => len,
        Err(reason) => return Err(format!("'{shown}' carries a damaged signature ({reason}); sign the original build")),
    };
    let digest = digest_prefix(&mut file, content_len).map_err(|e| format!("cannot read '{shown}': {e}"))?;
    let signature = key.0.sign(&message(&digest));
    let mut trailer = Vec::with_capacity(TRAILER_LEN);
    trailer.extend_from_slice(START_MAGIC);
    trailer.extend_from_slice(&key.public().0);
    trailer.extend_from_slice(&signature.to_bytes());
    trailer.extend_from_slice(&content_len.to_le_bytes());
    trailer.extend_from_slice(END_MAGIC);
    // Written next to the destination and renamed over it: a reader never sees half a file.
    let tmp = PathBuf::from(format!("{}.signing-{}", out.display(), std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut input = File::open(library)?.take(content_len);
        let mut output = File::create(&tmp)?;
        std::io::copy(&mut input, &mut output)?;
        output.write_all(&trailer)?;
        output.sync_all()?;
        if let Ok(meta) = std::fs::metadata(library) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write '{}': {e}", out.display()));
    }
    tracing::info!(library = %shown, out = %out.display(), key = %key.public().id(), "plugin signed");
    Ok(key.public())
}

/// The keys listed in a trust file: one `ed25519:<hex>` key per line; `#` comments and
/// blank lines are ignored.
pub fn read_trust_file(path: &Path) -> Result<Vec<PublicKey>, HostError> {
    let text = std::fs::read_to_string(path).map_err(|e| HostError::TrustFile {
        path: path.to_path_buf(),
        line: 0,
        reason: format!("cannot read it: {e}"),
    })?;
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let key_text = content.split_whitespace().next().unwrap_or("");
        let key = PublicKey::parse(key_text).map_err(|reason| HostError::TrustFile { path: path.to_path_buf(), line: number + 1, reason })?;
        keys.push(key);
    }
    Ok(keys)
}

/// Which libraries this process may load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Libraries signed by one of these keys load.
    pub trusted_keys: BTreeSet<PublicKey>,
    /// Unsigned libraries (and libraries signed by an untrusted key) load too. A library whose
    /// signature does not verify never loads.
    pub allow_unsigned: bool,
}

impl TrustPolicy {
    /// The policy the environment asks for: keys of the trust files in `DFPLUGIN_TRUST_FILE`
    /// (separated like `PATH`), and `DFPLUGIN_ALLOW_UNSIGNED=1`.
    pub fn from_env() -> Result<Self, HostError> {
        let mut policy = TrustPolicy::default();
        if let Some(files) = std::env::var_os(TRUST_FILE_ENV) {
            for file in std::env::split_paths(&files).filter(|p| !p.as_os_str().is_empty()) {
                policy.trusted_keys.extend(read_trust_file(&file)?);
            }
        }
        policy.allow_unsigned = match std::env::var(ALLOW_UNSIGNED_ENV) {
            Err(_) => false,
            Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "" | "0" | "false" | "no" => false,
                _ => {
                    return Err(HostError::TrustPolicyInvalid {
                        reason: format!("{ALLOW_UNSIGNED_ENV}='{value}' is not one of 1, true, yes, 0, false, no"),
                    })
                }
            },
        };
        Ok(policy)
    }

    /// Adds the keys of a trust file.
    pub fn trust_file(mut self, path: &Path) -> Result<Self, HostError> {
        self.trusted_keys.extend(read_trust_file(path)?);
        Ok(self)
    }

    /// Whether `self` allows nothing that `other` refuses.
    fn is_within(&self, other: &TrustPolicy) -> bool {
        (!self.allow_unsigned || other.allow_unsigned) && self.trusted_keys.is_subset(&other.trusted_keys)
    }
}

fn policy_cell() -> &'static RwLock<Option<TrustPolicy>> {
    static POLICY: OnceLock<RwLock<Option<TrustPolicy>>> = OnceLock::new();
    POLICY.get_or_init(|| RwLock::new(None))
}

/// Set once the first library was checked: from then on the policy only tightens.
static STARTED: AtomicBool = AtomicBool::new(false);

/// The process's trust policy (from the environment until [`set_trust_policy`] is called).
pub fn trust_policy() -> Result<TrustPolicy, HostError> {
    if let Some(policy) = policy_cell().read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        return Ok(policy.clone());
    }
    let mut cell = policy_cell().write().unwrap_or_else(|p| p.into_inner());
    if cell.is_none() {
        *cell = Some(TrustPolicy::from_env()?);
    }
    Ok(cell.clone().unwrap_or_default())
}

/// Sets the process's trust policy. Before the first plugin is loaded any policy may be set;
/// afterwards only a tighter one (no new key, unsigned not newly allowed): a loosening call is
/// refused and the policy stays as it was.
pub fn set_trust_policy(policy: TrustPolicy) -> Result<(), HostError> {
    let mut cell = policy_cell().write().unwrap_or_else(|p| p.into_inner());
    if STARTED.load(Ordering::SeqCst) {
        let current = match cell.as_ref() {
            Some(current) => current.clone(),
            None => TrustPolicy::from_env()?,
        };
        if !policy.is_within(&current) {
            let mut loosened = Vec::new();
            if policy.allow_unsigned && !current.allow_unsigned {
                loosened.push("allow_unsigned".to_string());
            }
            for key in policy.trusted_keys.difference(&current.trusted_keys) {
                loosened.push(format!("trust key {}", key.id()));
            }
            return Err(HostError::TrustPolicyLoosened { loosened: loosened.join(", ") });
        }
    }
    tracing::info!(keys = policy.trusted_keys.len(), allow_unsigned = policy.allow_unsigned, "plugin trust policy set");
    *cell = Some(policy);
    Ok(())
}

/// Checks the library at `path` against the trust policy; runs before any of its code does.
pub fn check_trusted(path: &Path) -> Result<SignatureState, HostError> {
    let state = signature_state(path)?;
    admit(path, &state)?;
    Ok(state)
}

/// Whether the current trust policy admits a library whose signature is in `state` (also asked
/// again for a library loaded earlier, so a tightened policy holds for it too).
pub fn admit(path: &Path, state: &SignatureState) -> Result<(), HostError> {
    let policy = trust_policy()?;
    STARTED.store(true, Ordering::SeqCst);
    let span = tracing::debug_span!("check_signature", path = %path.display(), state = state.name());
    let _enter = span.enter();
    match state {
        SignatureState::Invalid { reason } => {
            Err(HostError::SignatureInvalid { path: path.to_path_buf(), reason: reason.clone() })
        }
        SignatureState::Valid { key } if policy.trusted_keys.contains(key) => {
            tracing::debug!(key = %key.id(), "signature valid, key trusted");
            Ok(())
        }
        SignatureState::Valid { key } if policy.allow_unsigned => {
            tracing::warn!(path = %path.display(), key = %key.id(), "plugin signed by an untrusted key loads because unsigned plugins are allowed");
            Ok(())
        }
        SignatureState::Valid { key } => Err(HostError::UntrustedKey { path: path.to_path_buf(), key: key.id() }),
        SignatureState::Unsigned if policy.allow_unsigned => {
            tracing::debug!("unsigned plugin allowed by the trust policy");
            Ok(())
        }
        SignatureState::Unsigned => Err(HostError::Unsigned { path: path.to_path_buf() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("lib.so");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dfplugin-trust-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn signed_files_verify_and_every_change_is_caught() {
        let dir = temp_dir("sign");
        let lib = library(&dir, &vec![7u8; 5000]);
        assert_eq!(signature_state(&lib).unwrap(), SignatureState::Unsigned);
        let key = SecretKey::generate().unwrap();
        let signed = dir.join("signed.so");
        sign_library(&lib, &key, &signed).unwrap();
        assert_eq!(std::fs::metadata(&signed).unwrap().len(), 5000 + TRAILER_LEN as u64);
        assert_eq!(signature_state(&signed).unwrap(), SignatureState::Valid { key: key.public() });
        // Re-signing replaces the trailer instead of signing it.
        sign_library(&signed, &key, &signed).unwrap();
        assert_eq!(std::fs::metadata(&signed).unwrap().len(), 5000 + TRAILER_LEN as u64);

        let mut bytes = std::fs::read(&signed).unwrap();
        bytes[2500] ^= 1;
        let flipped = library(&dir, &bytes);
        assert!(matches!(signature_state(&flipped).unwrap(), SignatureState::Invalid { .. }));

        let mut grown = std::fs::read(&signed).unwrap();
        grown.splice(0..0, [0u8; 3]);
        let grown = library(&dir, &grown);
        assert!(matches!(signature_state(&grown).unwrap(), SignatureState::Invalid { reason } if reason.contains("bytes were added")));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn keys_round_trip_and_trust_files_name_bad_lines() {
        let dir = temp_dir("keys");
        let key = SecretKey::generate().unwrap();
        let public = key.write(&dir.join("k")).unwrap();
        assert_eq!(SecretKey::read(&dir.join("k")).unwrap().public(), key.public());
        assert_eq!(read_trust_file(&public).unwrap(), vec![key.public()]);
        let bad = dir.join("trust");
        std::fs::write(&bad, format!("# keys\n{}\nnot-a-key\n", key.public().to_text())).unwrap();
        let err = read_trust_file(&bad).unwrap_err();
        assert!(err.to_string().contains("line 3") && err.to_string().contains("not-a-key"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_policy_only_tightens_once_a_library_was_checked() {
        let dir = temp_dir("tighten");
        let key = SecretKey::generate().unwrap();
        let signed = library(&dir, &[1u8; 300]);
        sign_library(&signed, &key, &signed).unwrap();
        let unsigned = dir.join("unsigned.so");
        std::fs::write(&unsigned, [2u8; 300]).unwrap();
        set_trust_policy(TrustPolicy { trusted_keys: [key.public()].into(), allow_unsigned: true }).unwrap();
        assert!(check_trusted(&signed).is_ok() && check_trusted(&unsigned).is_ok());
        // A library was checked: from now on, no new key and no newly allowed unsigned files.
        let other = SecretKey::generate().unwrap().public();
        let err = set_trust_policy(TrustPolicy { trusted_keys: [key.public(), other].into(), allow_unsigned: true }).unwrap_err();
        assert_eq!(err.kind(), "trust_policy_loosened", "{err}");
        assert!(err.to_string().contains(&other.id()), "{err}");
        set_trust_policy(TrustPolicy { trusted_keys: [key.public()].into(), allow_unsigned: false }).unwrap();
        assert_eq!(check_trusted(&unsigned).unwrap_err().kind(), "unsigned");
        assert!(check_trusted(&signed).is_ok());
        let err = set_trust_policy(TrustPolicy { trusted_keys: [key.public()].into(), allow_unsigned: true }).unwrap_err();
        assert!(err.to_string().contains("allow_unsigned"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tightening_is_a_subset() {
        let a = PublicKey([1; 32]);
        let loose = TrustPolicy { trusted_keys: [a].into(), allow_unsigned: true };
        let tight = TrustPolicy { trusted_keys: BTreeSet::new(), allow_unsigned: false };
        assert!(tight.is_within(&loose));
        assert!(!loose.is_within(&tight));
    }
}
