//! Issue 15, "decide and document": what a sticky assignment may override, byte
//! order marks in config files, and error messages that do not echo file values.

use std::path::Path;

use cohortd::config::{parse_file, SourceFile};
use cohortd::engine::{Attr, Context, EvalOptions, Reason, Sticky};
use cohortd::Snapshot;

struct Unit<'a>(&'a str);

impl Context for Unit<'_> {
    fn get(&self, name: &str) -> Option<Attr<'_>> {
        (name == "u").then_some(Attr::Str(self.0))
    }
}

fn compile(name: &str, text: &[u8]) -> Snapshot {
    let doc = parse_file(Path::new(name), text).unwrap_or_else(|e| panic!("{e:?}"));
    Snapshot::compile(&[SourceFile {
        path: name.into(),
        doc,
    }])
    .unwrap()
}

const LAYERED: &str = r#"{
  "layers": [{"key": "l"}],
  "holdouts": [{"key": "h", "fraction": 0.3}],
  "experiments": [
    {"key": "in_layer", "status": "running", "variants": ["a", "b"],
     "assignment": {"hashKey": "u"}, "layer": {"key": "l", "range": [0.0, 0.2]}},
    {"key": "held", "status": "running", "variants": ["a", "b"],
     "assignment": {"hashKey": "u"}, "holdout": "h"}
  ]
}"#;

/// Mutual exclusion wins over sticky: a unit outside the experiment's layer slice
/// or inside its holdout stays out whatever the caller claims.
#[test]
fn sticky_cannot_override_layer_or_holdout() {
    let snap = compile("c.json", LAYERED.as_bytes());
    let sticky = EvalOptions {
        sticky: Some(Sticky { variant: "b" }),
        ..EvalOptions::default()
    };
    let (mut outside_layer, mut held, mut honoured) = (0, 0, 0);
    for i in 0..2_000 {
        let id = format!("unit-{i}");
        for key in ["in_layer", "held"] {
            let e = snap.experiment(key).unwrap();
            let plain = e.evaluate(&Unit(&id), EvalOptions::default(), &mut ());
            let s = e.evaluate(&Unit(&id), sticky, &mut ());
            match plain.reason {
                Reason::NotInLayer | Reason::Holdout => {
                    assert_eq!((s.reason, s.enrolled), (plain.reason, false), "{key} {id}");
                    if plain.reason == Reason::NotInLayer {
                        outside_layer += 1
                    } else {
                        held += 1
                    }
                }
                _ => {
                    assert_eq!((&*s.variant.key, s.reason), ("b", Reason::Sticky));
                    honoured += 1;
                }
            }
        }
    }
    assert!(outside_layer > 1000 && held > 300 && honoured > 1000);
}

/// Editors on some platforms start UTF-8 files with a byte order mark.
#[test]
fn a_byte_order_mark_is_accepted() {
    let json = "\u{feff}{\"key\":\"x\",\"status\":\"running\",\"variants\":[\"a\",\"b\"]}";
    let yaml = "\u{feff}key: x\nstatus: running\nvariants: [a, b]\n";
    let a = compile("x.json", json.as_bytes());
    let b = compile("x.yaml", yaml.as_bytes());
    assert_eq!(a.experiments().len(), 1);
    assert_eq!(a.experiment("x").unwrap().variants.len(), 2);
    assert_eq!(b.experiment("x").unwrap().variants.len(), 2);
}

/// A value from a file (say, a secret pulled in through a symlink) is never
/// echoed whole into /readyz or the logs: quoted values are capped.
#[test]
fn errors_cap_quoted_values() {
    let secret = format!("SECRET_TOKEN_{}", "x".repeat(200));
    for (name, text) in [
        (
            "s.yaml",
            format!("key: k\nstatus: {secret}\nvariants: [a]\n"),
        ),
        (
            "s.json",
            format!("{{\"key\":\"k\",\"status\":\"{secret}\",\"variants\":[\"a\"]}}"),
        ),
        ("t.yaml", format!("{secret}: 1\n")),
        ("u.json", format!("[\"{secret}\"]")),
    ] {
        let errs = parse_file(Path::new(name), text.as_bytes()).unwrap_err();
        for e in errs {
            let shown = e.to_string();
            assert!(!shown.contains(&secret), "{name}: {shown}");
            assert!(!shown.contains(&"x".repeat(60)), "{name}: {shown}");
            assert!(shown.contains(name), "names the file: {shown}");
        }
    }
}
