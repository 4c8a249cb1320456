//! Compiling config documents into a [`Snapshot`]: validation with every error
//! reported (file, experiment, field), defaults, hash seeds, targeting, layers and
//! the content-derived version. Over 500 lines because it is one pass over one
//! format's rules; a second format compiles in a file of its own beside it.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::config::{
    ConfigDocument, ConfigError, ConfigErrors, ExperimentConfig, SourceFile, Status,
};
use crate::engine::bucket::{self, purpose, DrawKey};
use crate::engine::reads::Reads;

use super::decls::{Decls, Owned};
use super::schedule;
use super::targeting::{CompiledTargeting, Cond, COND_MEMO};
use super::targeting_cache::TargetingCache;
use super::{Experiment, SlotRange, Snapshot, Variant, DEFAULT_HASH_KEY};

impl Snapshot {
    /// Reads, parses and compiles every config file under `path` (directory or file).
    ///
    /// Every problem is reported, not only the first: when some files do not parse,
    /// the others are still compiled and their problems follow the parse errors
    /// (so `cohortd validate` lists everything to fix in one run).
    pub fn load(path: &Path) -> Result<Snapshot, ConfigErrors> {
        Snapshot::from_raw(&crate::config::read_sources(path)?)
    }

    /// Parses and compiles files already read (see [`Snapshot::load`]).
    pub fn from_raw(raw: &[crate::config::RawFile]) -> Result<Snapshot, ConfigErrors> {
        Snapshot::from_raw_reusing(raw, None)
    }

    /// [`Snapshot::from_raw`] for a reload: files whose bytes did not change
    /// since `previous` (the served snapshot) are not parsed again (see
    /// [`super::sources`]) and experiments that did not change are copied from it
    /// instead of compiled again (see [`super::reuse`]); the result is the same.
    pub fn from_raw_reusing(
        raw: &[crate::config::RawFile],
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigErrors> {
        Snapshot::from_raw_split(raw, previous, PARALLEL_EXPERIMENTS)
    }

    /// [`Snapshot::from_raw_reusing`], compiling on two threads from
    /// `parallel_from` changed experiments (the tests compare both paths).
    fn from_raw_split(
        raw: &[crate::config::RawFile],
        previous: Option<&Snapshot>,
        parallel_from: usize,
    ) -> Result<Snapshot, ConfigErrors> {
        Snapshot::from_raw_with(raw, previous, parallel_from, true)
    }

    /// [`Snapshot::from_raw_split`]; without `share_targeting`, every
    /// experiment's targeting compiles on its own (see
    /// [`super::targeting_cache`]: the tests compare both).
    fn from_raw_with(
        raw: &[crate::config::RawFile],
        previous: Option<&Snapshot>,
        parallel_from: usize,
        share_targeting: bool,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut errors = Vec::new();
        let read = super::sources::parse(raw, previous);
        let mut inputs = Vec::with_capacity(read.len());
        for f in &read {
            // A file with problems is still checked as far as it could be read,
            // so one run lists everything to fix.
            errors.extend(f.problems.iter().cloned());
            if let Some((doc, experiments)) = f.parts(previous) {
                inputs.push(Input {
                    path: f.path.clone(),
                    doc,
                    experiments,
                    unchanged: f.unchanged(),
                });
            }
        }
        let mut compiler = Compiler::new(previous, parallel_from);
        compiler.share_targeting = share_targeting;
        let compiled = compiler.run(&inputs);
        drop(inputs);
        match compiled {
            Ok(mut snap) if errors.is_empty() => {
                snap.reused_files = read.iter().filter(|f| f.unchanged()).count();
                let sources = read.into_iter().filter_map(|f| f.into_cached(&snap));
                snap.sources = sources.collect();
                Ok(snap)
            }
            Ok(_) => Err(ConfigErrors(errors)),
            Err(more) => {
                errors.extend(more.0);
                // File by file, each file's own problems (in the order found)
                // before the cross-file ones (duplicate keys, layer overlaps).
                errors
                    .sort_by(|a, b| (&a.file, is_cross_file(a)).cmp(&(&b.file, is_cross_file(b))));
                Err(ConfigErrors(errors))
            }
        }
    }

    /// Compiles parsed files into a snapshot, reporting every problem found.
    pub fn compile(files: &[SourceFile]) -> Result<Snapshot, ConfigErrors> {
        Snapshot::compile_reusing(files, None)
    }

    /// [`Snapshot::compile`], copying the experiments of `previous` that did not
    /// change (see [`super::reuse`]).
    pub fn compile_reusing(
        files: &[SourceFile],
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigErrors> {
        // Borrowed documents: their configs are copied once, into the `Arc`s
        // the compiled experiments hold.
        let configs: Vec<Vec<Arc<ExperimentConfig>>> = files
            .iter()
            .map(|f| f.doc.experiments.iter().cloned().map(Arc::new).collect())
            .collect();
        let inputs: Vec<Input<'_>> = files
            .iter()
            .zip(&configs)
            .map(|(f, configs)| Input {
                path: Arc::from(f.path.as_path()),
                doc: &f.doc,
                experiments: configs.iter().collect(),
                unchanged: false,
            })
            .collect();
        Compiler::new(previous, PARALLEL_EXPERIMENTS).run(&inputs)
    }
}

/// How many experiments from changed files a compile needs before it uses a
/// second thread (see `Compiler::experiments`): below it, starting a thread
/// costs about what it saves.
pub const PARALLEL_EXPERIMENTS: usize = 1000;

/// One parsed file to compile.
pub(super) struct Input<'a> {
    pub(super) path: Arc<Path>,
    /// Its declarations (its `experiments` are not read: see `experiments`).
    pub(super) doc: &'a ConfigDocument,
    /// Its experiments, in file order, each shared with the experiment it
    /// compiles to.
    pub(super) experiments: Vec<&'a Arc<ExperimentConfig>>,
    /// Its bytes equal those the previous snapshot parsed (see [`super::sources`]).
    pub(super) unchanged: bool,
}

/// A problem that involves another file as well.
fn is_cross_file(e: &ConfigError) -> bool {
    ["also defined in", "declared twice", "overlaps experiment"]
        .iter()
        .any(|m| e.message.contains(m))
}

struct Compiler<'p> {
    errors: Vec<ConfigError>,
    /// The served snapshot, whose unchanged experiments are copied.
    previous: Option<&'p Snapshot>,
    /// How many were.
    reused: usize,
    /// A buffer reused by each experiment's hashes (`super::guard_key`).
    scratch: Vec<u8>,
    /// A buffer reused for each experiment's compact JSON.
    canonical: Vec<u8>,
    /// How many experiments from changed files compile on two threads.
    parallel_from: usize,
    /// Whether experiments that target alike share one compiled targeting
    /// (`super::targeting_cache`; off only to test it against compiling each).
    share_targeting: bool,
}

impl<'p> Compiler<'p> {
    fn new(previous: Option<&'p Snapshot>, parallel_from: usize) -> Self {
        Compiler {
            errors: Vec::new(),
            previous,
            reused: 0,
            scratch: Vec::new(),
            canonical: Vec::new(),
            parallel_from,
            share_targeting: true,
        }
    }

    fn err(&mut self, file: &Path, exp: &str, field: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(ConfigError::field(file, exp, field, msg));
    }

    fn run(mut self, files: &[Input<'_>]) -> Result<Snapshot, ConfigErrors> {
        // Gather shared declarations and check their uniqueness.
        let mut decls = Decls {
            segments: BTreeMap::new(),
            layers: BTreeMap::new(),
            holdouts: BTreeMap::new(),
        };
        let mut owners: BTreeMap<&str, Owned<'_>> = BTreeMap::new();
        for f in files {
            for (name, seg) in &f.doc.segments {
                if decls.segments.insert(name.clone(), seg.clone()).is_some() {
                    self.errors.push(doc_error(
                        &f.path,
                        format!("segments.{name}"),
                        "segment declared twice in the config directory",
                    ));
                }
            }
            for (i, l) in f.doc.layers.iter().enumerate() {
                if l.key.is_empty() {
                    self.errors.push(doc_error(
                        &f.path,
                        format!("layers[{i}].key"),
                        "must not be empty",
                    ));
                } else if decls.layers.insert(l.key.clone(), (&f.path, l)).is_some() {
                    self.errors.push(doc_error(
                        &f.path,
                        format!("layers[{i}]"),
                        format!("layer `{}` declared twice", l.key),
                    ));
                }
            }
            for (i, h) in f.doc.holdouts.iter().enumerate() {
                if !(0.0..=1.0).contains(&h.fraction) {
                    self.errors.push(doc_error(
                        &f.path,
                        format!("holdouts[{i}].fraction"),
                        format!("must be in [0, 1], got {}", h.fraction),
                    ));
                }
                if h.key.is_empty() {
                    self.errors.push(doc_error(
                        &f.path,
                        format!("holdouts[{i}].key"),
                        "must not be empty",
                    ));
                } else if decls.holdouts.insert(h.key.clone(), (&f.path, h)).is_some() {
                    self.errors.push(doc_error(
                        &f.path,
                        format!("holdouts[{i}]"),
                        format!("holdout `{}` declared twice", h.key),
                    ));
                }
            }
            for &e in &f.experiments {
                // One search of the map per experiment, not a lookup and an insert.
                match owners.entry(e.experiment_id.as_str()) {
                    Entry::Occupied(prev) => {
                        let prev = prev.get().file.display().to_string();
                        self.err(
                            &f.path,
                            &e.experiment_id,
                            "experimentId",
                            format!("duplicate experiment key: also defined in {prev}"),
                        );
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(Owned {
                            file: &f.path,
                            cfg: e,
                            unchanged: f.unchanged,
                        });
                    }
                }
            }
        }

        let flagd = match super::flagd::FlagdSet::compile(
            files
                .iter()
                .filter_map(|f| Some((&*f.path, f.doc.flagd.as_ref()?))),
            |key| owners.get(key).map(|o| &**o.file),
        ) {
            Ok(set) => set,
            Err(mut e) => {
                self.errors.append(&mut e);
                super::flagd::FlagdSet::default()
            }
        };

        let owners: Vec<&Owned<'_>> = owners.values().collect();
        let mut experiments = self.experiments(&owners, &decls);
        self.check_layer_overlaps(&experiments);
        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }

        // Experiments are not kept in the document: each is `Experiment::config`.
        let document = ConfigDocument {
            experiments: Vec::new(),
            segments: decls.segments,
            layers: decls.layers.values().map(|(_, l)| (*l).clone()).collect(),
            holdouts: decls.holdouts.values().map(|(_, h)| (*h).clone()).collect(),
            flagd: None,
        };
        let version = super::version::content_version(&experiments, &document, &flagd);
        let index = super::key_index::KeyIndex::new(&experiments, |e| &e.key);
        let unit_keys = index_unit_keys(&mut experiments);
        index_shared_conds(&mut experiments);
        Ok(Snapshot {
            version: version.into(),
            experiments,
            index,
            document,
            unit_keys,
            flagd,
            flagd_form: Default::default(),
            reused: self.reused,
            sources: Box::default(),
            reused_files: 0,
        })
    }

    /// Compiles (or copies, see [`super::reuse`]) each experiment of `owners`,
    /// in order. Experiments compile independently of each other, so when at
    /// least [`PARALLEL_EXPERIMENTS`] of them come from files that changed
    /// (those of unchanged files are copied, which is cheap), the second half
    /// of the changed ones compiles on a second thread (`crate::halves`), each
    /// half with a compiler of its own; the halves' experiments and errors are
    /// joined in order, so the snapshot and the errors are those of one thread
    /// (`compile_parallel_tests.rs` compares them).
    fn experiments(&mut self, owners: &[&Owned<'_>], decls: &Decls<'_>) -> Vec<Experiment> {
        let changed = |o: &&Owned<'_>| usize::from(!o.unchanged);
        if owners.len() < 2 || owners.iter().map(changed).sum::<usize>() < self.parallel_from {
            return self.experiments_run(owners, decls);
        }
        let mid = crate::halves::split_point(owners.iter().map(changed));
        let (previous, share) = (self.previous, self.share_targeting);
        let ((mut out, first), (rest, second)) =
            crate::halves::run_in_two(owners, mid, "cohortd-compile", |half| {
                let mut c = Compiler::new(previous, usize::MAX);
                c.share_targeting = share;
                let out = c.experiments_run(half, decls);
                (out, c)
            });
        out.extend(rest);
        for c in [first, second] {
            self.errors.extend(c.errors);
            self.reused += c.reused;
        }
        out
    }

    /// [`Self::experiments`] on this thread.
    fn experiments_run<'o>(&mut self, owners: &[&Owned<'o>], decls: &Decls<'_>) -> Vec<Experiment> {
        let mut experiments = Vec::with_capacity(owners.len());
        let mut cache = TargetingCache::new(self.share_targeting);
        for o in owners {
            let before = self
                .previous
                .and_then(|p| super::reuse::compiled_before(p, o, decls));
            if let Some(e) = before {
                self.reused += 1;
                experiments.push(e);
            } else if let Some(e) = self.experiment(o.file, o.cfg, decls, &mut cache) {
                experiments.push(e);
            }
        }
        experiments
    }

    fn experiment<'o>(
        &mut self,
        source: &Arc<Path>,
        shared: &'o Arc<ExperimentConfig>,
        decls: &Decls<'_>,
        cache: &mut TargetingCache<'o>,
    ) -> Option<Experiment> {
        let c: &'o ExperimentConfig = shared;
        let Decls {
            segments,
            layers,
            holdouts,
        } = decls;
        let file: &Path = source;
        let key = c.experiment_id.as_str();
        let before = self.errors.len();
        if key.is_empty() || key.len() > 256 || key.chars().any(char::is_control) {
            self.err(
                file,
                key,
                "experimentId",
                "must be 1 to 256 characters with no control characters",
            );
        }
        let traffic = c.traffic_allocation.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&traffic) {
            self.err(
                file,
                key,
                "trafficAllocation",
                format!("must be in [0, 1], got {traffic}"),
            );
        }
        let schedule = schedule::compile(&c.traffic_schedule, traffic).unwrap_or_else(|errs| {
            for (field, msg) in errs {
                self.err(file, key, field, msg);
            }
            Box::default()
        });
        // Borrowed: each becomes one `Arc<str>` in the experiment, no `String` first.
        let salt: &str = c.assignment.salt.as_deref().unwrap_or(key);
        if salt.is_empty() {
            self.err(
                file,
                key,
                "assignment.salt",
                "must not be empty (omit it to use the experiment key)",
            );
        }
        let hash_key: &str = c.assignment.hash_key.as_deref().unwrap_or(DEFAULT_HASH_KEY);
        if hash_key.is_empty() {
            self.err(
                file,
                key,
                "assignment.hashKey",
                "must not be empty (omit it to use targetingKey)",
            );
        }

        // Variants.
        let mut variants = Vec::with_capacity(c.variants.len());
        if c.variants.is_empty() {
            self.err(file, key, "variants", "needs at least one variant");
        }
        // Duplicates: a few variants are compared with the earlier ones (a
        // hash set per experiment cost more than the comparisons); many, by set.
        let few = c.variants.len() <= 16;
        let mut seen = std::collections::HashSet::new();
        let mut total = 0.0;
        for (i, v) in c.variants.iter().enumerate() {
            let repeated = match few {
                true => c.variants[..i].iter().any(|p| p.key == v.key),
                false => !seen.insert(v.key.as_str()),
            };
            if v.key.is_empty() {
                self.err(file, key, format!("variants[{i}].key"), "must not be empty");
            } else if repeated {
                self.err(
                    file,
                    key,
                    format!("variants[{i}].key"),
                    format!("duplicate variant key `{}`", v.key),
                );
            }
            let w = v.weight.unwrap_or(1.0);
            if !w.is_finite() || w < 0.0 {
                self.err(
                    file,
                    key,
                    format!("variants[{i}].weight"),
                    format!("must be a finite number >= 0, got {w}"),
                );
            } else {
                total += w;
            }
            variants.push(Variant {
                key: v.key.as_str().into(),
                value: v
                    .value
                    .clone()
                    .unwrap_or_else(|| serde_json::Value::String(v.key.clone())),
                weight: w,
                inv_weight: 1.0 / w,
                draw: DrawKey::derive(purpose::VARIANT, salt, &v.key),
            });
        }
        if !c.variants.is_empty() && total <= 0.0 && c.status == Status::Running {
            self.err(
                file,
                key,
                "variants",
                "weights sum to 0: a running experiment needs a variant with weight > 0",
            );
        }
        let find = |name: &str| c.variants.iter().position(|v| v.key == name);
        let default_variant = match &c.default_variant {
            None => 0,
            Some(d) => find(d).unwrap_or_else(|| {
                self.err(
                    file,
                    key,
                    "defaultVariant",
                    format!("`{d}` is not one of the variants"),
                );
                0
            }),
        };
        let winner = match &c.winner {
            None => None,
            Some(w) => {
                let i = find(w);
                if i.is_none() {
                    self.err(
                        file,
                        key,
                        "winner",
                        format!("`{w}` is not one of the variants"),
                    );
                }
                i
            }
        };

        let (targeting, reads) = self.targeting(file, c, hash_key, segments, cache);
        // The unit attribute as an `Arc`: the one `reads` lists first (shared
        // by the experiments that share a targeting), not another allocation.
        let unit: Arc<str> = match reads.names().first() {
            Some(n) => n.clone(),
            None => hash_key.into(),
        };
        let unit_arc = |name: &str| -> Arc<str> {
            match name == hash_key {
                true => unit.clone(),
                false => name.into(),
            }
        };

        let layer = c.layer.as_ref().map(|m| {
            let [start, end] = m.range;
            if !(0.0 <= start && start < end && end <= 1.0) {
                self.err(
                    file,
                    key,
                    "layer.range",
                    format!("must satisfy 0 <= start < end <= 1, got [{start}, {end}]"),
                );
            }
            let (lsalt, lhash) = match layers.get(&m.key) {
                Some((_, l)) => (l.salt.as_deref().unwrap_or(&l.key), l.hash_key.as_deref()),
                None => (m.key.as_str(), None),
            };
            let lhash = lhash.unwrap_or(hash_key);
            SlotRange {
                key: m.key.as_str().into(),
                same_unit: lhash == hash_key,
                hash_key: unit_arc(lhash),
                start: bucket::threshold(start),
                end: bucket::threshold(end),
                draw: DrawKey::derive(purpose::LAYER, lsalt, ""),
            }
        });
        let holdout = c.holdout.as_ref().and_then(|h| match holdouts.get(h) {
            None => {
                self.err(
                    file,
                    key,
                    "holdout",
                    format!("unknown holdout `{h}`: declare it in a document's `holdouts`"),
                );
                None
            }
            Some((_, d)) => Some(SlotRange {
                key: d.key.as_str().into(),
                same_unit: d.hash_key.as_deref().is_none_or(|h| h == hash_key),
                hash_key: unit_arc(d.hash_key.as_deref().unwrap_or(hash_key)),
                start: 0,
                end: bucket::threshold(d.fraction),
                draw: DrawKey::derive(purpose::HOLDOUT, d.salt.as_deref().unwrap_or(&d.key), ""),
            }),
        });
        self.metadata(file, c);

        if self.errors.len() > before {
            return None;
        }
        // Fingerprint: the experiment plus every shared declaration it depends
        // on (`deps`); the guard key leaves out what moves nobody. Both, and
        // the compact JSON the version hashes, come from one serialisation
        // into reused buffers (`super::guard_key`), copied once into an `Arc`.
        let mut deps = Vec::new();
        if let Some(t) = &c.targeting {
            for s in &t.segments {
                let _ = serde_json::to_writer(&mut deps, &segments.get(s));
            }
        }
        if let Some(m) = &c.layer {
            let _ = serde_json::to_writer(&mut deps, &layers.get(&m.key).map(|(_, l)| l));
        }
        if let Some(h) = &c.holdout {
            let _ = serde_json::to_writer(&mut deps, &holdouts.get(h).map(|(_, h)| h));
        }
        let equal_weights = variants.first().is_some_and(|f: &Variant| {
            f.weight > 0.0
                && variants
                    .iter()
                    .all(|v| v.weight.to_bits() == f.weight.to_bits())
        });
        let hashes = super::guard_key::serialise(c, &deps, &mut self.canonical, &mut self.scratch);
        let canonical: Arc<[u8]> = Arc::from(&self.canonical[..]);
        Some(Experiment {
            key: key.into(),
            status: c.status,
            variants: variants.into(),
            default_variant,
            winner,
            traffic: bucket::threshold(traffic),
            schedule: schedule.into(),
            hash_key: unit.clone(),
            salt_fingerprint: bucket::salt_fingerprint(salt).into(),
            epoch: c.assignment.epoch,
            layer,
            holdout,
            fingerprint: super::version::hex_u64(hashes.fingerprint).into(),
            fingerprint_hash: hashes.fingerprint,
            guard_key: hashes.guard,
            source: source.clone(),
            config: shared.clone(),
            canonical,
            traffic_draw: DrawKey::derive(purpose::TRAFFIC, salt, ""),
            equal_weights,
            unit_key: usize::MAX,
            targeting,
            reads,
            salt: salt.into(),
        })
    }

    /// The experiment's compiled targeting and the attributes evaluation
    /// reads (`hash_key` first): those of an earlier experiment of this pass
    /// that targets alike (`cache`, see [`super::targeting_cache`]), else
    /// compiled here, with targeting errors reported against `key`.
    fn targeting<'o>(
        &mut self,
        file: &Path,
        c: &'o ExperimentConfig,
        hash_key: &'o str,
        segments: &BTreeMap<String, crate::config::Targeting>,
        cache: &mut TargetingCache<'o>,
    ) -> (CompiledTargeting, Reads) {
        let key = c.experiment_id.as_str();
        if let Some(hit) = c.targeting.as_ref().and_then(|t| cache.get(t, hash_key)) {
            return hit;
        }
        let mut valid = true;
        let mut targeting = match &c.targeting {
            None => CompiledTargeting::default(),
            Some(t) => {
                CompiledTargeting::compile(t, segments, "targeting").unwrap_or_else(|errs| {
                    valid = false;
                    for (field, msg) in errs {
                        self.err(file, key, field, msg);
                    }
                    CompiledTargeting::default()
                })
            }
        };
        // The attributes evaluation reads, gathered in one walk of a context.
        let mut reads = Reads::new(hash_key);
        // Freshly compiled, so `make_mut` never copies here.
        for cond in Arc::make_mut(&mut targeting.conds) {
            cond.read = reads.add(&cond.attribute).unwrap_or(usize::MAX);
        }
        if let (Some(t), true) = (&c.targeting, valid) {
            cache.put(t, hash_key, &targeting, &reads);
        }
        (targeting, reads)
    }

    fn metadata(&mut self, file: &Path, c: &ExperimentConfig) {
        let key = c.experiment_id.as_str();
        if let Some(m) = &c.metrics {
            for (field, metric) in m
                .primary
                .iter()
                .map(|p| ("metrics.primary".to_string(), p))
                .chain(
                    m.secondary
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (format!("metrics.secondary[{i}]"), s)),
                )
            {
                if metric.name.trim().is_empty() {
                    self.err(file, key, format!("{field}.name"), "must not be empty");
                }
            }
            for (i, g) in m.guardrails.iter().enumerate() {
                if g.name.trim().is_empty() {
                    self.err(
                        file,
                        key,
                        format!("metrics.guardrails[{i}].name"),
                        "must not be empty",
                    );
                }
                if !g.threshold.is_finite() {
                    self.err(
                        file,
                        key,
                        format!("metrics.guardrails[{i}].threshold"),
                        "must be a finite number",
                    );
                }
            }
        }
        if let Some(srm) = &c.srm {
            if let Some(attr) = &srm.strata {
                if attr.is_empty() || attr.len() > 256 || attr.chars().any(char::is_control) {
                    self.err(
                        file,
                        key,
                        "srm.strata",
                        "must be an attribute name of 1 to 256 characters with no control characters",
                    );
                }
            }
        }
        if let Some(e) = &c.evaluation {
            if let Some(a) = e.alpha {
                if !(a > 0.0 && a < 1.0) {
                    self.err(
                        file,
                        key,
                        "evaluation.alpha",
                        format!("must satisfy 0 < alpha < 1, got {a}"),
                    );
                }
            }
            if e.max_peeks == Some(0) {
                self.err(file, key, "evaluation.maxPeeks", "must be at least 1");
            }
        }
    }

    /// Experiments that share a layer must draw the same slot for a unit (one
    /// attribute, one salt) and must not share slots. Each member is checked
    /// against the furthest-reaching earlier member, so every overlap is reported.
    fn check_layer_overlaps(&mut self, exps: &[Experiment]) {
        let mut by_layer: BTreeMap<&str, Vec<(&Experiment, &SlotRange)>> = BTreeMap::new();
        for e in exps
            .iter()
            .filter(|e| matches!(e.status, Status::Running | Status::Paused))
        {
            if let Some(l) = &e.layer {
                by_layer.entry(&l.key).or_default().push((e, l));
            }
        }
        for (layer, mut members) in by_layer {
            members.sort_by_key(|(e, l)| (l.start, e.key.clone()));
            let mut reach: Option<(&Experiment, &SlotRange)> = None;
            for &(e, l) in &members {
                if let Some((first, fl)) = members.first() {
                    if fl.hash_key != l.hash_key {
                        self.err(
                            &e.source,
                            &e.key,
                            "layer.key",
                            format!(
                                "layer `{layer}` draws on `{}` for experiment `{}` but on `{}` here; declare the layer with a `hashKey` or use the same `assignment.hashKey`",
                                fl.hash_key, first.key, l.hash_key
                            ),
                        );
                    }
                }
                if let Some((prev, pl)) = reach {
                    if l.start < pl.end {
                        self.err(
                            &e.source,
                            &e.key,
                            "layer.range",
                            format!("overlaps experiment `{}` in layer `{layer}`; experiments in one layer must not share slots", prev.key),
                        );
                    }
                }
                if reach.is_none_or(|(_, pl)| l.end > pl.end) {
                    reach = Some((e, l));
                }
            }
        }
    }
}

/// Lists the distinct unit attributes of running experiments, most used first
/// (ties by name), and records each experiment's position in that list.
fn index_unit_keys(experiments: &mut [Experiment]) -> Box<[Box<str>]> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in experiments.iter().filter(|e| e.status == Status::Running) {
        *counts.entry(&e.hash_key).or_default() += 1;
    }
    let mut keys: Vec<(&str, usize)> = counts.into_iter().collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let keys: Box<[Box<str>]> = keys.into_iter().map(|(k, _)| k.into()).collect();
    for e in experiments.iter_mut() {
        e.unit_key = keys
            .iter()
            .position(|k| **k == *e.hash_key)
            .unwrap_or(usize::MAX);
    }
    keys
}

/// Gives each targeting condition that two or more running experiments share a
/// slot in the per-call condition memo (`engine::rules::CondMemo`), most shared
/// first, up to [`COND_MEMO`] slots; every other condition keeps `usize::MAX` and
/// is evaluated on its own.
///
/// Conditions are often shared between experiments: with the served snapshot
/// (experiments copied on a reload, `super::reuse`) and between the
/// experiments of one compile that target alike (`super::targeting_cache`).
/// Each shared list is counted and given its slots once (the slots depend only
/// on the conditions and on whether the experiment runs), and a list whose
/// slots change is copied once, the copy shared in turn. Lists are told apart
/// by address; every list keyed is held (by an experiment or by `done`) until
/// the end, so no address is reused meanwhile.
fn index_shared_conds(experiments: &mut [Experiment]) {
    let at = |conds: &Arc<[Cond]>| Arc::as_ptr(conds).cast::<Cond>() as usize;
    // Running experiments per distinct list, in first-seen order.
    let mut lists: Vec<(&[Cond], usize)> = Vec::new();
    let mut list_of: HashMap<usize, usize> = HashMap::new();
    for e in experiments.iter().filter(|e| e.status == Status::Running) {
        let i = *list_of.entry(at(&e.targeting.conds)).or_insert_with(|| {
            lists.push((&e.targeting.conds, 0));
            lists.len() - 1
        });
        lists[i].1 += 1;
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (conds, n) in lists {
        for c in conds {
            *counts.entry(c.sharing_key()).or_default() += n;
        }
    }
    let mut shared: Vec<(&str, usize)> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
    shared.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    shared.truncate(COND_MEMO);
    let slots: BTreeMap<Box<str>, usize> = shared
        .into_iter()
        .enumerate()
        .map(|(i, (k, _))| (k.into(), i))
        .collect();
    // Every experiment, so one copied from the served snapshot on a reload
    // never keeps that snapshot's slots; its conditions are copied only when
    // a slot differs. `done`: for a shared list and a status, `None` when its
    // slots are already right, else the list it was copied from and the copy.
    type Done = HashMap<(usize, bool), Option<(Arc<[Cond]>, Arc<[Cond]>)>>;
    let mut done = Done::new();
    for e in experiments.iter_mut() {
        let run = e.status == Status::Running;
        let slot = |c: &Cond| match run {
            true => slots.get(c.sharing_key()).copied().unwrap_or(usize::MAX),
            false => usize::MAX,
        };
        let conds = &mut e.targeting.conds;
        let key = (at(conds), run);
        if let Some(known) = done.get(&key) {
            if let Some((_, copy)) = known {
                *conds = copy.clone();
            }
            continue;
        }
        let shared = Arc::strong_count(conds) > 1;
        if conds.iter().all(|c| c.memo == slot(c)) {
            if shared {
                done.insert(key, None);
            }
            continue;
        }
        // In place when only this experiment holds them (compiled now).
        let from = shared.then(|| conds.clone());
        for c in Arc::make_mut(conds) {
            c.memo = slot(c);
        }
        if let Some(from) = from {
            done.insert(key, Some((from, conds.clone())));
        }
    }
}

fn doc_error(file: &Path, field: String, msg: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        experiment: None,
        field: Some(field),
        message: msg.into(),
        flagd: false,
    }
}

#[cfg(test)]
#[path = "compile_parallel_tests.rs"]
mod parallel_tests;

#[cfg(test)]
#[path = "targeting_cache_tests.rs"]
mod targeting_cache_tests;
