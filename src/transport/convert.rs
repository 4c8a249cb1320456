//! Conversions between protobuf well-known types and the engine's views.
//!
//! [`Context`] is implemented directly on `prost_types::Struct`, so a request's
//! context is evaluated in place without copying it into another map.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

use crate::engine::reads::{gather, Reads};
use crate::engine::{Attr, Context, Reason};
use crate::transport::pb;

impl Context for Struct {
    #[inline]
    fn get(&self, name: &str) -> Option<Attr<'_>> {
        if self.fields.len() <= crate::engine::context::SCAN_MAX {
            return self
                .fields
                .iter()
                .find(|(k, _)| crate::engine::context::same_name(k, name))
                .map(|(_, v)| proto_attr(v));
        }
        self.fields.get(name).map(proto_attr)
    }

    #[inline]
    fn get_reads<'s>(&'s self, reads: &Reads, out: &mut [Option<Attr<'s>>]) {
        if self.fields.len() <= crate::engine::context::SCAN_MAX {
            let entries = self.fields.iter().map(|(k, v)| (&**k, v));
            return gather(reads, entries, put_proto, out);
        }
        for (o, name) in out.iter_mut().zip(reads.names()) {
            *o = self.fields.get(&**name).map(proto_attr);
        }
    }

    fn json(&self) -> std::borrow::Cow<'_, serde_json::Map<String, serde_json::Value>> {
        std::borrow::Cow::Owned(struct_to_json(self))
    }
}

/// A `Struct` as a JSON object (flagd-format targeting evaluates JSON).
pub fn struct_to_json(s: &Struct) -> serde_json::Map<String, serde_json::Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), kind_to_json(v.kind.as_ref())))
        .collect()
}

fn kind_to_json(k: Option<&Kind>) -> serde_json::Value {
    use serde_json::Value as J;
    match k {
        Some(Kind::BoolValue(b)) => J::Bool(*b),
        Some(Kind::StringValue(s)) => J::String(s.clone()),
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StructValue(s)) => J::Object(struct_to_json(s)),
        Some(Kind::ListValue(l)) => l
            .values
            .iter()
            .map(|v| kind_to_json(v.kind.as_ref()))
            .collect(),
        Some(Kind::NullValue(_)) | None => J::Null,
    }
}

/// A protobuf number as JSON: integral numbers go out as JSON integers
/// (protobuf has only doubles), non-finite ones as null.
pub fn number_to_json(n: f64) -> serde_json::Value {
    use serde_json::Value as J;
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return J::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(J::Null, J::Number)
}

/// Views a protobuf `Value` as an [`Attr`].
#[inline]
pub fn proto_attr(v: &Value) -> Attr<'_> {
    match &v.kind {
        Some(Kind::StringValue(s)) => Attr::Str(s),
        Some(Kind::NumberValue(n)) => Attr::Num(*n),
        Some(Kind::BoolValue(b)) => Attr::Bool(*b),
        Some(Kind::NullValue(_)) | None => Attr::Null,
        Some(Kind::StructValue(_)) | Some(Kind::ListValue(_)) => Attr::Other,
    }
}

/// [`proto_attr`] into `slot`, strings and booleans each by a store of their
/// own (as `engine::context`'s JSON reader, which says why).
#[inline(always)]
fn put_proto<'v>(v: &'v Value, slot: &mut Option<Attr<'v>>) {
    match &v.kind {
        Some(Kind::StringValue(s)) => *slot = Some(Attr::Str(s)),
        Some(Kind::BoolValue(b)) => *slot = Some(Attr::Bool(*b)),
        _ => *slot = Some(proto_attr(v)),
    }
}

/// Converts a JSON value (a variant's value) to a protobuf `Value`.
pub fn json_to_proto(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    let kind = match v {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_proto).collect(),
        }),
        J::Object(map) => Kind::StructValue(json_object_to_struct(map)),
    };
    Value { kind: Some(kind) }
}

/// Converts a JSON object to a protobuf `Struct`.
pub fn json_object_to_struct(map: &serde_json::Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_proto(v)))
            .collect(),
    }
}

/// Converts an [`Attr`] (a value seen in a context) to a protobuf `Value`.
pub fn attr_to_proto(a: Attr<'_>) -> Value {
    let kind = match a {
        Attr::Str(s) => Kind::StringValue(s.to_owned()),
        Attr::Num(n) => Kind::NumberValue(n),
        Attr::Bool(b) => Kind::BoolValue(b),
        Attr::Null | Attr::Other => Kind::NullValue(0),
    };
    Value { kind: Some(kind) }
}

/// The proto enum for a [`Reason`].
pub fn reason_to_proto(r: Reason) -> pb::Reason {
    match r {
        Reason::Split => pb::Reason::Split,
        Reason::Sticky => pb::Reason::Sticky,
        Reason::TargetingMiss => pb::Reason::TargetingMiss,
        Reason::Holdout => pb::Reason::Holdout,
        Reason::NotInLayer => pb::Reason::NotInLayer,
        Reason::NotInTraffic => pb::Reason::NotInTraffic,
        Reason::Disabled => pb::Reason::Disabled,
        Reason::Winner => pb::Reason::Winner,
        Reason::MissingUnit => pb::Reason::MissingUnit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_is_a_context() {
        let mut s = Struct::default();
        s.fields.insert(
            "userId".into(),
            Value {
                kind: Some(Kind::StringValue("u1".into())),
            },
        );
        s.fields.insert(
            "age".into(),
            Value {
                kind: Some(Kind::NumberValue(30.0)),
            },
        );
        assert_eq!(s.get("userId"), Some(Attr::Str("u1")));
        assert_eq!(s.get("age"), Some(Attr::Num(30.0)));
        assert_eq!(s.get("nope"), None);
    }

    #[test]
    fn json_round_trips_into_proto_values() {
        let v = serde_json::json!({"a": [1, "x", true, null], "b": {"c": 2.5}});
        let p = json_to_proto(&v);
        let Some(Kind::StructValue(s)) = p.kind else {
            panic!("not a struct")
        };
        assert!(matches!(s.fields["a"].kind, Some(Kind::ListValue(ref l)) if l.values.len() == 4));
    }
}
