//! The plain C entry points (`dfplugin_*`) that non-Rust hosts such as Python/ctypes use,
//! exercised through `dlopen`/`dlsym` exactly as such a host would.

mod common;

use std::ffi::{c_char, CStr, CString};
use std::sync::Arc;

use common::plugin_path;
use datafusion::logical_expr::{ScalarUDF, ScalarUDFImpl};
use datafusion::prelude::SessionContext;
use datafusion_ffi::udf::FFI_ScalarUDF;
use df_plugin_host::conform::rows_of;

struct CApi {
    manifest_json: unsafe extern "C" fn() -> *const c_char,
    embedded: unsafe extern "C" fn(*mut usize) -> *const u8,
    abi_version: unsafe extern "C" fn() -> u32,
    scalar_udf: unsafe extern "C" fn(*const c_char) -> *mut FFI_ScalarUDF,
    free_scalar_udf: unsafe extern "C" fn(*mut FFI_ScalarUDF),
    live_objects: unsafe extern "C" fn() -> u64,
    last_error_code: unsafe extern "C" fn() -> u32,
    last_error_message: unsafe extern "C" fn() -> *const c_char,
}

fn c_api() -> CApi {
    // SAFETY: the plugin's initialisers are plain Rust statics; the library is never unloaded.
    unsafe {
        let lib = libloading::Library::new(plugin_path()).expect("dlopen plugin");
        let api = CApi {
            manifest_json: *lib.get(b"dfplugin_manifest_json").expect("symbol"),
            embedded: *lib.get(b"dfplugin_embedded_manifest").expect("symbol"),
            abi_version: *lib.get(b"dfplugin_abi_version").expect("symbol"),
            scalar_udf: *lib.get(b"dfplugin_scalar_udf").expect("symbol"),
            free_scalar_udf: *lib.get(b"dfplugin_free_scalar_udf").expect("symbol"),
            live_objects: *lib.get(b"dfplugin_live_objects").expect("symbol"),
            last_error_code: *lib.get(b"dfplugin_last_error_code").expect("symbol"),
            last_error_message: *lib.get(b"dfplugin_last_error_message").expect("symbol"),
        };
        std::mem::forget(lib);
        api
    }
}

#[test]
fn manifest_entry_points_agree_with_the_file() {
    let api = c_api();
    let from_file = df_plugin_host::read_embedded_manifest(&plugin_path()).expect("embedded");
    // SAFETY: entry points per their documented contracts.
    let live: df_plugin_api::Manifest = unsafe {
        let ptr = (api.manifest_json)();
        assert!(!ptr.is_null());
        serde_json::from_str(CStr::from_ptr(ptr).to_str().unwrap()).unwrap()
    };
    assert_eq!(live, from_file);
    let embedded = unsafe {
        let mut len = 0usize;
        let ptr = (api.embedded)(&mut len);
        std::slice::from_raw_parts(ptr, len).to_vec()
    };
    assert_eq!(df_plugin_api::manifest::decode_embedded(&embedded).unwrap(), from_file);
    let v = df_plugin_api::AbiVersion::CURRENT;
    assert_eq!(unsafe { (api.abi_version)() }, (u32::from(v.major) << 16) | u32::from(v.minor));
}

#[tokio::test]
async fn scalar_udf_from_c_entry_point_runs_and_is_freed_once() {
    let api = c_api();
    let before = unsafe { (api.live_objects)() };
    let name = CString::new("stable_hash64").unwrap();
    let ptr = unsafe { (api.scalar_udf)(name.as_ptr()) };
    assert!(!ptr.is_null());
    assert_eq!(unsafe { (api.live_objects)() }, before + 1);

    // As datafusion-python does: import by cloning through the struct's own clone.
    let udf: Arc<dyn ScalarUDFImpl> = unsafe { (&*ptr).into() };
    let ctx = SessionContext::new();
    ctx.register_udf(ScalarUDF::new_from_shared_impl(udf));
    let batches = ctx.sql("SELECT stable_hash64('a') = stable_hash64('a') AS same").await.unwrap().collect().await.unwrap();
    assert_eq!(rows_of(&batches).unwrap(), vec![vec!["true".to_string()]]);

    unsafe { (api.free_scalar_udf)(ptr) };
    assert_eq!(unsafe { (api.live_objects)() }, before);
    // The session's clone stays valid after the capsule's original is freed.
    let batches = ctx.sql("SELECT stable_hash64('b') IS NOT NULL AS ok").await.unwrap().collect().await.unwrap();
    assert_eq!(rows_of(&batches).unwrap(), vec![vec!["true".to_string()]]);
}

#[test]
fn unknown_names_return_null_and_a_coded_error() {
    let api = c_api();
    let name = CString::new("no_such_function").unwrap();
    let ptr = unsafe { (api.scalar_udf)(name.as_ptr()) };
    assert!(ptr.is_null());
    let code = unsafe { (api.last_error_code)() };
    assert_eq!(code, df_plugin_api::ErrorCode::UnknownObject as u32);
    let message = unsafe { CStr::from_ptr((api.last_error_message)()) }.to_string_lossy().into_owned();
    assert!(message.contains("no_such_function") && message.contains("stable_hash64"), "{message}");
    let ptr = unsafe { (api.scalar_udf)(std::ptr::null()) };
    assert!(ptr.is_null());
    assert_eq!(unsafe { (api.last_error_code)() }, df_plugin_api::ErrorCode::InvalidArgument as u32);
}
