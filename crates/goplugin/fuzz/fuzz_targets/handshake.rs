//! Arbitrary values for the environment the host sets, through the handshake code the bridge
//! runs at launch: `check_cookie`, `negotiate_version` and `serve::bind_with_env` (which also
//! parses `PLUGIN_UNIX_SOCKET_GROUP`, a gid or a group name, and chowns the socket to it).
//!
//! Input: NUL-separated fields (environment values cannot hold NUL), each absent when the
//! input has fewer fields, and, like `std::env::var`, absent when not UTF-8:
//! `MATTERMOST_PLUGIN` value, `PLUGIN_PROTOCOL_VERSIONS` value, `PLUGIN_UNIX_SOCKET_GROUP`
//! value, then the protocol versions the plugin serves (one per byte).
//! `PLUGIN_UNIX_SOCKET_DIR` stays unset: sockets go to the temp dir, never to a path the
//! input names.
//!
//! Checked against go-plugin's rules (`server.go` `Serve`, `protocolVersion`): the cookie
//! passes only on an exact match; the version is the highest one served that the host
//! offers (entries parsed as Go's `strconv.Atoi` does), else the lowest one served; a
//! warning appears exactly when an entry does not parse, and Go's `%q` leaves no control
//! character in it; `bind_with_env` fails only for the cookie, for serving nothing, or on
//! the socket group, and otherwise prints go-plugin's handshake line for its socket.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use gob::Types;
use goplugin::PluginSet;
use goplugin::handshake::{self, CookieError, HandshakeConfig};
use goplugin::netrpc::RpcTypes;
use goplugin::serve::{
    self, ENV_PROTOCOL_VERSIONS, ENV_UNIX_SOCKET_GROUP, ServeConfig, ServeError,
};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: gob_fuzz::CappedAllocator = gob_fuzz::CappedAllocator;

fn rpc_types() -> &'static Arc<RpcTypes> {
    static TYPES: OnceLock<Arc<RpcTypes>> = OnceLock::new();
    TYPES.get_or_init(|| Arc::new(RpcTypes::new(Types::new()).expect("net/rpc types")))
}

const WARNING: &str = "server sent invalid plugin version ";

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|b| *b == 0);
    let mut value = || {
        fields
            .next()
            .and_then(|f| std::str::from_utf8(f).ok())
            .map(str::to_owned)
    };
    let cookie = value();
    let offer = value();
    let group = value();
    let ours: BTreeSet<u32> = fields
        .next()
        .unwrap_or(&[])
        .iter()
        .map(|b| u32::from(*b))
        .collect();

    let config = HandshakeConfig::mattermost();
    let env = |k: &str| -> Option<String> {
        if k == config.magic_cookie_key {
            cookie.clone()
        } else if k == ENV_PROTOCOL_VERSIONS {
            offer.clone()
        } else if k == ENV_UNIX_SOCKET_GROUP {
            group.clone()
        } else {
            None
        }
    };

    let cookie_ok = cookie.as_deref() == Some(config.magic_cookie_value.as_str());
    let checked = handshake::check_cookie(&config, env);
    if cookie_ok {
        assert_eq!(checked, Ok(()));
    } else {
        assert_eq!(checked, Err(CookieError::NotLaunchedByHost));
    }

    let (version, warnings) = handshake::negotiate_version(&ours, offer.as_deref());
    let entries: Vec<&str> = offer
        .as_deref()
        .filter(|o| !o.is_empty())
        .map(|o| o.split(',').collect())
        .unwrap_or_default();
    let offered: Vec<i64> = entries.iter().filter_map(|e| e.parse().ok()).collect();
    let want = ours
        .iter()
        .rev()
        .find(|v| offered.contains(&i64::from(**v)))
        .or_else(|| ours.iter().next())
        .copied();
    assert_eq!(version, want, "served {ours:?}, offered {offered:?}");
    let all_parse = offered.len() == entries.len();
    assert_eq!(warnings.is_empty(), all_parse, "{warnings:?}");
    if !all_parse {
        assert!(warnings.starts_with(WARNING), "{warnings:?}");
        assert!(!warnings.chars().any(char::is_control), "{warnings:?}");
    }

    // bind_with_env prints the warnings to stderr: it gets the offer only when there are
    // none, so a long run's log stays readable (negotiate_version saw every offer above).
    let bind_offer = if all_parse { offer.clone() } else { None };
    let bind_env = |k: &str| {
        if k == ENV_PROTOCOL_VERSIONS {
            bind_offer.clone()
        } else {
            env(k)
        }
    };
    let plugins: BTreeMap<u32, PluginSet> = ours.iter().map(|v| (*v, PluginSet::new())).collect();
    let serve_config = ServeConfig {
        handshake: config.clone(),
        plugins,
        types: rpc_types().clone(),
    };
    let bind_version = handshake::negotiate_version(&ours, bind_offer.as_deref()).0;
    match serve::bind_with_env(serve_config, bind_env) {
        Ok(bound) => {
            assert!(cookie_ok);
            let version = bind_version.expect("bound with a version to serve");
            assert_eq!(bound.protocol_version(), version);
            let path = bound.socket_path();
            assert_eq!(path.parent(), Some(std::env::temp_dir().as_path()));
            assert_eq!(
                bound.handshake_line(),
                format!("1|{version}|unix|{}|netrpc|\n", path.display())
            );
        }
        Err(ServeError::Cookie(e)) => {
            assert!(!cookie_ok);
            assert_eq!(e, CookieError::NotLaunchedByHost);
        }
        Err(ServeError::NoPlugins) => assert!(cookie_ok && ours.is_empty()),
        Err(ServeError::Listen(e)) => {
            // Only the group can fail here: a name no group has, or a chown we may not do.
            assert!(
                cookie_ok && group.as_deref().is_some_and(|g| !g.is_empty()),
                "listen failed without a socket group: {e}"
            );
        }
        Err(e) => panic!("bind failed unexpectedly: {e}"),
    }
});
