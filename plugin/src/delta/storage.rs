//! Object stores for Delta tables: local files (deltalake's default) and S3-compatible
//! endpoints, served by `object_store`'s S3 client (without deltalake's AWS SDK crates).

use std::collections::HashMap;
use std::sync::{Arc, Once};

use deltalake::logstore::{
    default_logstore, logstore_factories, object_store_factories, LogStore, LogStoreFactory, ObjectStoreFactory,
    ObjectStoreRef, StorageConfig,
};
use deltalake::{DeltaResult, DeltaTableError, Path};
use url::Url;

/// Schemes served by the S3 factory.
pub const S3_SCHEMES: [&str; 3] = ["s3", "s3a", "s3n"];

struct S3StoreFactory;

impl ObjectStoreFactory for S3StoreFactory {
    fn parse_url_opts(&self, url: &Url, config: &StorageConfig) -> DeltaResult<(ObjectStoreRef, Path)> {
        // object_store only knows `s3://`; s3a/s3n are the same buckets.
        let mut s3_url = url.clone();
        if url.scheme() != "s3" {
            let text = url.as_str().replacen(url.scheme(), "s3", 1);
            s3_url = Url::parse(&text).map_err(|e| DeltaTableError::InvalidTableLocation(format!("{url}: {e}")))?;
        }
        let (store, path) = object_store::parse_url_opts(&s3_url, config.raw.iter())?;
        Ok((Arc::from(store), path))
    }
}

struct S3LogStoreFactory;

impl LogStoreFactory for S3LogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

/// Registers the S3 factories with deltalake (once per process).
pub fn register_object_store_factories() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in S3_SCHEMES {
            if let Ok(url) = Url::parse(&format!("{scheme}://")) {
                object_store_factories().insert(url.clone(), Arc::new(S3StoreFactory));
                logstore_factories().insert(url, Arc::new(S3LogStoreFactory));
            }
        }
    });
}

/// Storage options with the short spellings users write (`endpoint`, `region`, `allow_http`,
/// ...) mapped to the keys `object_store` reads; other keys pass through unchanged.
pub fn normalize_storage_options(options: &HashMap<String, String>) -> HashMap<String, String> {
    options
        .iter()
        .map(|(key, value)| {
            let lower = key.to_ascii_lowercase();
            let mapped = match lower.as_str() {
                "allow_http" => "aws_allow_http".to_string(),
                _ => key.clone(),
            };
            (mapped, value.clone())
        })
        .collect()
}
