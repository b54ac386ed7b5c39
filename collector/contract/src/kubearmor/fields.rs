//! Deserialization of the record's fields: every field optional, numbers accepted as strings
//! and strings as numbers where KubeArmor versions differ, with errors that name the field.

use super::*;

pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {}", clip(&n.to_string())),
        Value::String(s) => format!("string {:?}", clip(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

pub(super) fn bad_field<E: serde::de::Error>(field: &'static str, reason: String) -> E {
    E::custom(MappingError::BadField { field, reason })
}

pub(super) fn opt_string<'de, D: Deserializer<'de>>(
    d: D,
    field: &'static str,
) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad_field(
            field,
            format!("expected a string, found {}", describe(&other)),
        )),
    }
}

pub(super) fn opt_int<'de, D, T>(d: D, field: &'static str) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let n: i64 = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => match n.as_i64().or_else(|| integral(n.as_f64())) {
            Some(n) => n,
            None => {
                return Err(bad_field(
                    field,
                    format!("{} is not an integer in range", clip(&n.to_string())),
                ))
            }
        },
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse().map_err(|_| {
                bad_field(
                    field,
                    format!("expected an integer, found string {:?}", clip(&s)),
                )
            })?
        }
        Some(other) => {
            return Err(bad_field(
                field,
                format!("expected an integer, found {}", describe(&other)),
            ))
        }
    };
    T::try_from(n)
        .map(Some)
        .map_err(|_| bad_field(field, format!("{n} is out of range")))
}

/// `f` as an `i64` when it is a whole number in range.
pub(super) fn integral(f: Option<f64>) -> Option<i64> {
    const LIMIT: f64 = i64::MAX as f64; // rounds up to 2^63, itself out of range
    f.filter(|f| f.fract() == 0.0 && *f >= -LIMIT && *f < LIMIT)
        .map(|f| f as i64)
}

pub(super) fn de_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

pub(super) fn de_owner<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<KubeArmorOwner>, D::Error> {
    let map = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(bad_field(
                "Owner",
                format!("expected an object, found {}", describe(&other)),
            ))
        }
    };
    let get = |key: &str, field: &'static str| -> Result<Option<String>, D::Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad_field(
                field,
                format!("expected a string, found {}", describe(other)),
            )),
        }
    };
    Ok(Some(KubeArmorOwner {
        kind: get("Ref", "Owner.Ref")?,
        name: get("Name", "Owner.Name")?,
        namespace: get("Namespace", "Owner.Namespace")?,
    }))
}

/// One deserializer per field, so that errors name it.
macro_rules! field_deserializers {
    ($($helper:ident: $ty:ty => { $($name:ident = $field:literal),* $(,)? })*) => {$($(
        pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
            $helper(d, $field)
        }
    )*)*};
}

field_deserializers! {
    opt_string: String => {
        de_updated_time = "UpdatedTime",
        de_cluster_name = "ClusterName",
        de_host_name = "HostName",
        de_namespace_name = "NamespaceName",
        de_pod_name = "PodName",
        de_labels = "Labels",
        de_container_id = "ContainerID",
        de_container_name = "ContainerName",
        de_container_image = "ContainerImage",
        de_parent_process_name = "ParentProcessName",
        de_process_name = "ProcessName",
        de_type = "Type",
        de_source = "Source",
        de_operation = "Operation",
        de_resource = "Resource",
        de_data = "Data",
        de_result = "Result",
        de_policy_name = "PolicyName",
        de_action = "Action",
    }
    opt_int: i64 => {
        de_timestamp = "Timestamp",
        de_host_ppid = "HostPPID",
        de_host_pid = "HostPID",
    }
    opt_int: i32 => {
        de_ppid = "PPID",
        de_pid = "PID",
    }
    opt_int: u32 => {
        de_uid = "UID",
    }
}
