//! Server reflection and the method list: every descriptor set cohortd serves,
//! read once so reflection lists the services and metrics know each method.

use prost::Message;

use crate::transport::FILE_DESCRIPTOR_SET;

/// Every encoded descriptor set served by reflection (ours include `proto/`).
fn descriptor_sets() -> [&'static [u8]; 2] {
    [FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET]
}

/// A reflection builder knowing every descriptor set we serve.
pub(super) fn reflection() -> tonic_reflection::server::Builder<'static> {
    descriptor_sets()
        .into_iter()
        .fold(tonic_reflection::server::Builder::configure(), |b, d| {
            b.register_encoded_file_descriptor_set(d)
        })
}

/// `(service, method)` of every method of `services`, read from the descriptors
/// (reflection's own included), so metrics labels are fixed at startup.
pub(super) fn methods_of(services: &[&str]) -> Vec<(String, String)> {
    let sets = descriptor_sets().into_iter().chain([
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]);
    let mut out = Vec::new();
    for bytes in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(bytes) else {
            continue;
        };
        for file in set.file {
            for svc in &file.service {
                let full = match file.package() {
                    "" => svc.name().to_owned(),
                    p => format!("{p}.{}", svc.name()),
                };
                if services.contains(&full.as_str()) {
                    for m in &svc.method {
                        out.push((full.clone(), m.name().to_owned()));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_the_descriptors() {
        let m = methods_of(&["cohortd.v1.Assignment", "grpc.health.v1.Health"]);
        let has = |s: &str, m2: &str| m.iter().any(|(a, b)| a == s && b == m2);
        assert!(has("cohortd.v1.Assignment", "Assign"));
        assert!(has("cohortd.v1.Assignment", "Watch"));
        assert!(has("grpc.health.v1.Health", "Check"));
        assert!(!m.iter().any(|(a, _)| a.contains("reflection")));
    }
}
