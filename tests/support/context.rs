//! Evaluation contexts in the three shapes tests need: the engine's
//! allocation-free [`Context`] trait, a JSON object, and a protobuf `Struct`.

use cohortd::engine::{Attr, Context};
use prost_types::value::Kind;
use prost_types::{Struct, Value};

/// A context holding one attribute (the unit id) plus optional extra string attributes.
pub struct Unit<'a> {
    /// Attribute name of the unit id.
    pub key: &'a str,
    /// The unit id.
    pub id: &'a str,
    /// Extra attributes.
    pub extra: &'a [(&'a str, &'a str)],
}

impl Context for Unit<'_> {
    fn get(&self, name: &str) -> Option<Attr<'_>> {
        if name == self.key {
            return Some(Attr::Str(self.id));
        }
        self.extra
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| Attr::Str(v))
    }
}

/// A protobuf string value.
pub fn sv(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

/// A protobuf `Struct` context from `(name, string value)` pairs.
pub fn proto_ctx(pairs: &[(&str, &str)]) -> Struct {
    Struct {
        fields: pairs.iter().map(|(k, v)| (k.to_string(), sv(v))).collect(),
    }
}

/// A JSON object context; panics if `v` is not an object.
pub fn json_ctx(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => panic!("context must be an object"),
    }
}
