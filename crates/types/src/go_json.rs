//! Request bodies decoded as Go's `encoding/json` decodes them into docker's structs.
//!
//! Go writes nil maps, slices and pointers as `null`, and decoding `null` into a struct field
//! leaves the field as it was: for every Go client `null` and an absent key mean the same
//! ("not set"). [`normalize`] gives serde that rule once for every body: the members of a
//! struct whose value is `null` are dropped, at any depth (structs inside arrays and inside map
//! values too), before the body meets the typed models, the engine's checks and the stored
//! record. The typed models can keep plain `String`/`bool`/map fields with `#[serde(default)]`.
//!
//! Maps are not structs: in a map the key is the information (`PortBindings {"80/tcp": null}`
//! publishes the port, `EndpointsConfig {"net": null}` joins `net`), so members of the objects
//! named in [`MAP_KEYS`] are kept; a `null` value there becomes the zero value of the map's
//! element type where that is a string (Go's `map[string]string` stores `""`).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Keys whose value is a Go map (keyed by data, not by field name), with whether the map's
/// values are strings. Their members are kept even when `null`.
pub const MAP_KEYS: &[(&str, bool)] = &[
    ("Labels", true),
    ("Options", true),
    ("DriverOpts", true),
    ("Sysctls", true),
    ("StorageOpt", true),
    ("Tmpfs", true),
    ("AuxiliaryAddresses", true),
    ("PortBindings", false),
    ("ExposedPorts", false),
    ("Volumes", false),
    ("EndpointsConfig", false),
];

/// Applies Go's "`null` is not set" rule to a decoded body in place (see the module docs).
pub fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for (k, v) in m.iter_mut() {
                match MAP_KEYS.iter().find(|(name, _)| name == k) {
                    Some(&(_, strings)) => normalize_map(v, strings),
                    // `LogConfig.Config` is a map[string]string too
                    None if k == "Config" && v.is_object() => normalize_map(v, true),
                    None => normalize(v),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

fn normalize_map(v: &mut Value, strings: bool) {
    if let Value::Object(m) = v {
        for v in m.values_mut() {
            if v.is_null() {
                if strings {
                    *v = Value::String(String::new());
                }
            } else {
                normalize(v);
            }
        }
    }
}

/// A JSON body decoded with Go's null rule. `Ok(None)` for a body that is only `null`.
pub fn from_slice<T: DeserializeOwned>(data: &[u8]) -> Result<Option<T>, serde_json::Error> {
    let mut v: Value = serde_json::from_slice(data)?;
    if v.is_null() {
        return Ok(None);
    }
    normalize(&mut v);
    serde_json::from_value(v).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn struct_nulls_are_dropped_at_any_depth() {
        let mut v = json!({"Image":"x","Env":null,"HostConfig":{"LogConfig":{"Type":null,"Config":null},
            "Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{"Labels":null}}]}});
        normalize(&mut v);
        assert_eq!(
            v,
            json!({"Image":"x","HostConfig":{"LogConfig":{},"Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{}}]}})
        );
    }

    #[test]
    fn map_members_are_kept() {
        let mut v = json!({"HostConfig":{"PortBindings":{"80/tcp":null,"81/tcp":[{"HostIp":null,"HostPort":"81"}]}},
            "Labels":{"a":null,"b":"c"},"NetworkingConfig":{"EndpointsConfig":{"n":null,"m":{"Aliases":null}}},
            "IPAM":{"Config":[{"Subnet":"10.9.0.0/16","IPRange":null,"AuxiliaryAddresses":null}]}});
        normalize(&mut v);
        assert_eq!(
            v,
            json!({"HostConfig":{"PortBindings":{"80/tcp":null,"81/tcp":[{"HostPort":"81"}]}},
                "Labels":{"a":"","b":"c"},"NetworkingConfig":{"EndpointsConfig":{"n":null,"m":{}}},
                "IPAM":{"Config":[{"Subnet":"10.9.0.0/16"}]}})
        );
    }

    #[test]
    fn typed_models_take_nulls() {
        let body = br#"{"Image":"x","Hostname":null,"Tty":null,"Cmd":null,"HostConfig":{"LogConfig":{"Type":null,"Config":null},"RestartPolicy":null,"AutoRemove":null,"ConsoleSize":null}}"#;
        let r: crate::CreateRequest = from_slice(body).unwrap().unwrap();
        assert_eq!(r.config.image, "x");
        assert!(r.host_config.log_config.config.is_empty());
        assert!(from_slice::<crate::CreateRequest>(b"null")
            .unwrap()
            .is_none());
    }
}
