//! The first cut of `apiverify`: the committed protos are what the generator makes from the
//! committed schema, they compile (protox, a full protobuf compiler), and every plugin.API
//! method and plugin.Hooks hook has exactly one RPC of the right shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mmplug_codegen::{HANDWRITTEN, PROTO_DIR, Schema, generate, load_schema};
use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema() -> Schema {
    load_schema(&root().join("schema/mattermost-api.json")).expect("committed schema loads")
}

fn handwritten() -> Vec<String> {
    HANDWRITTEN
        .iter()
        .map(|f| std::fs::read_to_string(root().join("proto").join(PROTO_DIR).join(f)).unwrap())
        .collect()
}

fn compile() -> DescriptorPool {
    let files: Vec<String> = ["common", "http", "models", "api", "hooks"]
        .iter()
        .map(|f| format!("{PROTO_DIR}/{f}.proto"))
        .collect();
    let mut c = protox::Compiler::new([root().join("proto")]).expect("include path");
    c.include_imports(true);
    c.open_files(&files)
        .unwrap_or_else(|e| panic!("protos do not compile: {e:?}"));
    c.descriptor_pool()
}

#[test]
fn committed_protos_match_the_generator() {
    let s = schema();
    let hw = handwritten();
    let refs: Vec<&str> = hw.iter().map(String::as_str).collect();
    let first = generate(&s, &refs).unwrap();
    let second = generate(&s, &refs).unwrap();
    assert_eq!(first.files, second.files, "generation is not deterministic");
    for (name, content) in &first.files {
        let path = root().join("proto").join(PROTO_DIR).join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert!(
            on_disk == *content,
            "{} is stale: run `cargo run -p mmplug-codegen`",
            path.display()
        );
        assert!(
            content.contains("DO NOT EDIT"),
            "{name} lacks the generated header"
        );
    }
}

/// The stream shape each special method must have: (client streaming, server streaming).
fn expected_streaming(service: &str, name: &str) -> (bool, bool) {
    match (service, name) {
        ("PluginHooks", "ServeHTTP" | "ServeMetrics" | "FileWillBeUploaded") => (true, true),
        ("PluginAPI", "PluginHTTP") => (true, true),
        ("PluginAPI", "InstallPlugin" | "UploadData" | "ReceiveSharedChannelAttachmentSyncMsg") => {
            (true, false)
        }
        _ => (false, false),
    }
}

fn field_numbers(m: &MessageDescriptor) -> BTreeMap<u32, String> {
    m.fields()
        .map(|f| (f.number(), f.name().to_string()))
        .collect()
}

#[test]
fn every_method_and_hook_has_exactly_one_rpc() {
    let s = schema();
    let pool = compile();
    for (service, methods, req_sfx, resp_sfx) in [
        ("PluginAPI", &s.api, "Request", "Response"),
        ("PluginHooks", &s.hooks, "HookRequest", "HookResponse"),
    ] {
        let svc = pool
            .get_service_by_name(&format!("mattermost.plugin.v1.{service}"))
            .unwrap_or_else(|| panic!("service {service} missing"));
        let rpcs: Vec<String> = svc.methods().map(|m| m.name().to_string()).collect();
        let names: Vec<String> = methods.iter().map(|m| m.name.clone()).collect();
        assert_eq!(
            rpcs, names,
            "{service}: RPCs must be the Go methods, once each, in order"
        );

        for m in methods.iter() {
            let rpc = svc.methods().find(|r| r.name() == m.name).unwrap();
            assert_eq!(
                (rpc.is_client_streaming(), rpc.is_server_streaming()),
                expected_streaming(service, &m.name),
                "{service}.{} stream shape",
                m.name
            );
            if expected_streaming(service, &m.name) != (false, false) {
                continue;
            }
            // Unary: context = 1 then the params from 2; error = 1 then the other results.
            let req = rpc.input();
            let resp = rpc.output();
            assert_eq!(
                req.full_name(),
                format!("mattermost.plugin.v1.{}{req_sfx}", m.name)
            );
            assert_eq!(
                resp.full_name(),
                format!("mattermost.plugin.v1.{}{resp_sfx}", m.name)
            );
            let rf = field_numbers(&req);
            assert_eq!(
                rf.get(&1).map(String::as_str),
                Some("context"),
                "{}",
                m.name
            );
            let want_params = if m.name == "LoadPluginConfiguration" {
                0
            } else {
                m.params.len()
            };
            assert_eq!(
                rf.len(),
                1 + want_params,
                "{} request fields {rf:?}",
                m.name
            );
            for i in 0..want_params {
                assert!(rf.contains_key(&(i as u32 + 2)), "{} param {i}", m.name);
            }
            let of = field_numbers(&resp);
            assert_eq!(of.get(&1).map(String::as_str), Some("error"), "{}", m.name);
            let error_field = resp.get_field(1).unwrap();
            match error_field.kind() {
                Kind::Message(em) => assert_eq!(em.full_name(), "mattermost.plugin.v1.AppError"),
                k => panic!("{}: error field is {k:?}", m.name),
            }
            let non_error = if m.name == "LoadPluginConfiguration" {
                1 // bytes config = 2
            } else {
                m.results
                    .iter()
                    .filter(|r| r.ty != "error" && r.ty != "*model.AppError")
                    .count()
            };
            assert_eq!(of.len(), 1 + non_error, "{} response fields {of:?}", m.name);
        }
    }
}

#[test]
fn special_methods_have_their_documented_shapes() {
    let pool = compile();
    let msg = |n: &str| {
        pool.get_message_by_name(&format!("mattermost.plugin.v1.{n}"))
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    let cfg = msg("LoadPluginConfigurationResponse");
    let config = cfg.get_field_by_name("config").unwrap();
    assert_eq!((config.number(), config.kind()), (2, Kind::Bytes));

    let implemented = msg("ImplementedHookResponse");
    let hooks = implemented.get_field_by_name("hooks").unwrap();
    assert_eq!(
        (hooks.number(), hooks.is_list(), hooks.kind()),
        (2, true, Kind::String)
    );

    // Byte streams: init carries the non-stream params, chunks carry the bytes.
    let part = msg("InstallPluginRequestPart");
    assert!(part.get_field_by_name("init").is_some() && part.get_field_by_name("chunk").is_some());
    let init = msg("InstallPluginRequest");
    assert_eq!(
        field_numbers(&init),
        BTreeMap::from([(1, "context".into()), (3, "replace".into())])
    );
    let out = msg("FileWillBeUploadedHookResponsePart");
    assert_eq!(
        field_numbers(&out),
        BTreeMap::from([(1, "chunk".into()), (2, "result".into())])
    );

    // Go maps of interface values and dynamic values use the well-known types.
    let post = msg("Post");
    match post.get_field_by_name("props").unwrap().kind() {
        Kind::Message(m) => assert_eq!(m.full_name(), "google.protobuf.Struct"),
        k => panic!("Post.props is {k:?}"),
    }
    assert!(post.get_field_by_name("create_at").is_some());
    let ctx = msg("PluginContext");
    assert!(ctx.get_field_by_name("ip_address").is_some());
}

#[test]
fn schema_errors_are_reported_not_panicked() {
    let bad = r#"{"module":"m","version":"v","api":[{"name":"X","params":[{"name":"a","type":"chan int"}],"results":[]}],"hooks":[],"types":{}}"#;
    let s: Schema = serde_json::from_str(bad).unwrap();
    assert!(generate(&s, &[]).is_err());
    let unknown = r#"{"module":"m","version":"v","api":[{"name":"X","params":[{"name":"a","type":"*model.Nope"}],"results":[]}],"hooks":[],"types":{}}"#;
    let s: Schema = serde_json::from_str(unknown).unwrap();
    let err = generate(&s, &[]).unwrap_err().to_string();
    assert!(err.contains("model.Nope"), "{err}");
    let dir = std::env::temp_dir().join(format!("mmplug-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.json");
    std::fs::write(&path, "{not json").unwrap();
    let err = load_schema(&path).unwrap_err().to_string();
    assert!(err.contains("invalid schema"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
