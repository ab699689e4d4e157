//! Stages → images: each instruction of the stages the target needs becomes an image on top
//! of the previous one (docker's classic builder), looked up in the cache first.
//!
//! - metadata instructions (ENV, LABEL, CMD, …) write a config-only image, no container;
//! - RUN runs a container from the current image, streams its output, commits its changes;
//! - COPY/ADD write their layer straight from the context (copy.rs), no container;
//! - WORKDIR adds a small layer when the directory is not there yet.

use crate::backend::{Backend, ImageInfo, RunSpec};
use crate::cache::{self, Cache};
use crate::dockerfile::{Command, Dockerfile, Healthcheck, Instruction, Kind, Stage};
use crate::options::BuildOptions;
use crate::stream::{self, Collect, Output};
use crate::Error;
use berth_image::ImageConfig;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The proxy build args usable without an ARG (and left out of the cache key).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Where COPY reads the build context from.
#[derive(Clone, Copy)]
pub struct ContextSource<'a> {
    pub root: &'a Path,
    pub ignore: Option<&'a berth_util::dockerignore::Matcher>,
}

/// The state of a stage being built.
#[derive(Clone)]
struct State {
    /// the current image (None: scratch and nothing written yet)
    image: Option<String>,
    cfg: ImageConfig,
    /// ARGs declared in this stage, with their values
    args: BTreeMap<String, Option<String>>,
    shell: Vec<String>,
    cmd_set: bool,
    maintainer: String,
}

/// One build.
pub struct Executor<'a> {
    backend: &'a dyn Backend,
    opts: &'a BuildOptions,
    cache: &'a Cache,
    context: Option<ContextSource<'a>>,
    out: &'a mut dyn Output,
    escape: char,
    step: usize,
    total: usize,
    /// the result of each stage built (by index)
    results: Vec<Option<ImageInfo>>,
    meta: BTreeMap<String, Option<String>>,
    /// build args some ARG (or a proxy name) consumed
    used_args: HashSet<String>,
    /// the `cachefrom` images (matched by history, as docker does)
    cache_from: Vec<ImageInfo>,
    /// images this build wrote (not found in the cache)
    written: HashSet<String>,
}

fn ser<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

/// `30s`, `1m30s`, `500ms`, `1h` → nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, Error> {
    let bad = || Error::User(format!("time: invalid duration \"{s}\""));
    if s == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Ok(total as i64)
}

fn now() -> String {
    berth_engine::format_rfc3339_nanos(Some(std::time::SystemTime::now()))
}

/// The stages stage `i` builds on directly: `FROM <stage>`, `COPY --from=<stage|index>`.
fn stage_deps(df: &Dockerfile, i: usize, from_names: &[String]) -> Vec<usize> {
    let by_name = |name: &str, before: usize| -> Option<usize> {
        df.stages[..before]
            .iter()
            .rposition(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    };
    let mut out = Vec::new();
    if let Some(j) = by_name(&from_names[i], i) {
        out.push(j);
    }
    for ins in &df.stages[i].instructions {
        if let Kind::Copy(c) | Kind::Add(c) = &ins.kind {
            if let Some(f) = &c.from {
                let j = match f.parse::<usize>() {
                    Ok(j) => (j < i).then_some(j),
                    Err(_) => by_name(f, i),
                };
                out.extend(j);
            }
        }
    }
    out
}

/// The stages that building `target` needs (itself and what it builds on), in file order.
fn needed_stages(df: &Dockerfile, target: usize, from_names: &[String]) -> Vec<usize> {
    let mut need = vec![false; df.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if need[i] {
            continue;
        }
        need[i] = true;
        todo.extend(stage_deps(df, i, from_names));
    }
    (0..df.stages.len()).filter(|i| need[*i]).collect()
}

/// The needed stages in waves: a stage's wave comes after those of the stages it builds on;
/// the stages of one wave are independent of each other (built in parallel).
fn waves(df: &Dockerfile, stages: &[usize], from_names: &[String]) -> Vec<Vec<usize>> {
    let mut level = vec![0usize; df.stages.len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &i in stages {
        level[i] = stage_deps(df, i, from_names)
            .iter()
            .map(|j| level[*j] + 1)
            .max()
            .unwrap_or(0);
        if out.len() <= level[i] {
            out.resize(level[i] + 1, Vec::new());
        }
        out[level[i]].push(i);
    }
    out
}

impl<'a> Executor<'a> {
    pub fn new(
        backend: &'a dyn Backend,
        opts: &'a BuildOptions,
        cache: &'a Cache,
        context: Option<ContextSource<'a>>,
        out: &'a mut dyn Output,
    ) -> Executor<'a> {
        Executor {
            backend,
            opts,
            cache,
            context,
            out,
            escape: '\\',
            step: 0,
            total: 0,
            results: Vec::new(),
            meta: BTreeMap::new(),
            used_args: HashSet::new(),
            cache_from: Default::default(),
            written: HashSet::new(),
        }
    }

    fn say(&mut self, text: &str) -> Result<(), Error> {
        if !self.out.send(stream::stream(text)) || self.backend.cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    /// The variables a step sees: its ENV (which wins), then its ARGs.
    fn lookup(st: &State) -> impl Fn(&str) -> Option<String> + '_ {
        move |name: &str| {
            let env = st.cfg.config.as_ref().and_then(|c| c.env.as_ref());
            for e in env.into_iter().flatten().rev() {
                if let Some((k, v)) = e.split_once('=') {
                    if k == name {
                        return Some(v.to_string());
                    }
                }
            }
            st.args.get(name).cloned().flatten()
        }
    }

    /// docker's `ProcessWord`: one word, variables expanded, quotes and escapes removed.
    fn expand(&self, st: &State, word: &str) -> Result<String, Error> {
        crate::expand::expand_word(word, &Self::lookup(st), self.escape)
            .map_err(|e| Error::User(e.to_string()))
    }

    /// Expansion keeping quotes and escapes (a COPY heredoc body: file content).
    fn expand_keep(&self, st: &State, text: &str) -> Result<String, Error> {
        crate::expand::expand(text, &Self::lookup(st), self.escape)
            .map_err(|e| Error::User(e.to_string()))
    }

    /// Like [`Executor::expand`], split into words (EXPOSE, VOLUME: `$PORTS`).
    fn expand_split(&self, st: &State, word: &str) -> Result<Vec<String>, Error> {
        crate::expand::expand_words(word, &Self::lookup(st), self.escape)
            .map_err(|e| Error::User(e.to_string()))
    }

    fn expand_meta(&self, word: &str) -> Result<String, Error> {
        let meta = &self.meta;
        let lookup = |name: &str| meta.get(name).cloned().flatten();
        crate::expand::expand_word(word, &lookup, self.escape)
            .map_err(|e| Error::User(e.to_string()))
    }

    /// Runs the whole build; returns the final image ID (`sha256:…`). Messages go to the
    /// output as they happen; the error is returned (the caller writes it).
    pub fn run(&mut self, df: &Dockerfile) -> Result<String, Error> {
        self.escape = df.escape;
        for w in &df.warnings {
            self.say(&format!("{w}\n"))?;
        }
        if df.stages.is_empty() {
            return Err(Error::User(
                "the Dockerfile (Dockerfile) cannot be empty".into(),
            ));
        }
        // ARGs before the first FROM
        for ins in &df.meta_args {
            if let Kind::Arg(list) = &ins.kind {
                for (name, default) in list {
                    let v = match self.opts.build_args.get(name) {
                        Some(v) => {
                            self.used_args.insert(name.clone());
                            v.clone()
                        }
                        None => match default {
                            Some(d) => Some(self.expand_meta(d)?),
                            None => None,
                        },
                    };
                    self.meta.insert(name.clone(), v);
                }
            }
        }
        let from_names: Vec<String> = df
            .stages
            .iter()
            .map(|s| match &s.from.kind {
                Kind::From { image, .. } => self.expand_meta(image),
                _ => Ok(String::new()),
            })
            .collect::<Result<_, _>>()?;
        let target = match &self.opts.target {
            Some(t) => df
                .stages
                .iter()
                .position(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(t)))
                .ok_or_else(|| {
                    Error::User(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            None => df.stages.len() - 1,
        };
        let stages = needed_stages(df, target, &from_names);
        let labels: Vec<(String, String)> = self
            .opts
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.total = stages
            .iter()
            .map(|i| 1 + df.stages[*i].instructions.len())
            .sum::<usize>()
            + labels.len()
            + df.meta_args.len();
        // the ARGs before the first FROM are steps too (a `Step` line each, nothing after it),
        // as dockerd's classic builder counts them
        for ins in &df.meta_args {
            self.print_step(&ins.original)?;
        }
        self.results = vec![None; df.stages.len()];
        self.prepare_cache_from();
        // step numbers follow the file; independent stages are built at the same time
        let mut offsets = vec![0usize; df.stages.len()];
        let mut acc = df.meta_args.len();
        for &i in &stages {
            offsets[i] = acc;
            acc += 1 + df.stages[i].instructions.len();
        }
        for wave in waves(df, &stages, &from_names) {
            if wave.len() == 1 {
                let i = wave[0];
                self.step = offsets[i];
                let labels: &[(String, String)] = if i == target { &labels } else { &[] };
                let r = self.build_stage(df, i, &from_names[i], labels)?;
                self.results[i] = r;
                continue;
            }
            self.build_wave(df, &wave, &from_names, &offsets)?;
        }
        let last = self.results[target].clone();
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.say(&format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            ))?;
        }
        let img = last.ok_or_else(|| {
            Error::User("No image was generated. Is your Dockerfile empty?".into())
        })?;
        Ok(img.id)
    }

    /// Builds independent stages (none is the target) on threads of their own, each with its
    /// messages kept and passed on in file order once all are done (the classic stream is
    /// one build's lines in order; a stage's lines stay together).
    fn build_wave(
        &mut self,
        df: &Dockerfile,
        wave: &[usize],
        from_names: &[String],
        offsets: &[usize],
    ) -> Result<(), Error> {
        type Outcome = (
            Result<Option<ImageInfo>, Error>,
            Collect,
            HashSet<String>,
            HashSet<String>,
        );
        let outcomes: Vec<Outcome> = std::thread::scope(|sc| {
            let handles: Vec<_> = wave
                .iter()
                .map(|&i| {
                    let (backend, opts, cache, context) =
                        (self.backend, self.opts, self.cache, self.context);
                    let (escape, total) = (self.escape, self.total);
                    let (meta, results, cache_from) = (
                        self.meta.clone(),
                        self.results.clone(),
                        self.cache_from.clone(),
                    );
                    sc.spawn(move || {
                        let mut out = Collect::default();
                        let mut ex = Executor::new(backend, opts, cache, context, &mut out);
                        ex.escape = escape;
                        ex.total = total;
                        ex.step = offsets[i];
                        ex.meta = meta;
                        ex.results = results;
                        ex.cache_from = cache_from;
                        let r = ex.build_stage(df, i, &from_names[i], &[]);
                        let used = std::mem::take(&mut ex.used_args);
                        let written = std::mem::take(&mut ex.written);
                        drop(ex);
                        (r, out, used, written)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (
                            Err(Error::Internal("a build stage panicked".into())),
                            Collect::default(),
                            HashSet::new(),
                            HashSet::new(),
                        )
                    })
                })
                .collect()
        });
        for (&i, (r, out, used, written)) in wave.iter().zip(outcomes) {
            for l in out.0 {
                if !self.out.send(l) {
                    return Err(Error::Cancelled);
                }
            }
            self.used_args.extend(used);
            self.written.extend(written);
            self.results[i] = r?;
        }
        Ok(())
    }

    /// Whether this build wrote `image` (rather than finding it in the cache).
    pub fn wrote(&self, image: &str) -> bool {
        self.written.contains(image)
    }

    /// `cachefrom`: the listed images (missing ones are skipped, as docker does).
    fn prepare_cache_from(&mut self) {
        for name in &self.opts.cache_from {
            if let Ok(Some(img)) = self.backend.lookup(name) {
                self.cache_from.push(img);
            }
        }
    }

    fn print_step(&mut self, original: &str) -> Result<(), Error> {
        self.step += 1;
        let line = format!("Step {}/{} : {}", self.step, self.total, original);
        self.say(&line)?;
        self.say("\n")
    }

    fn build_stage(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        from: &str,
        labels: &[(String, String)],
    ) -> Result<Option<ImageInfo>, Error> {
        let stage: &Stage = &df.stages[idx];
        self.print_step(&stage.from.original)?;
        let platform = match &stage.from.kind {
            Kind::From { platform, .. } => match platform {
                Some(p) => Some(self.expand_meta(p)?),
                None => self.opts.platform.clone(),
            },
            _ => None,
        };
        let base = self.resolve_base(df, idx, from, platform.as_deref())?;
        let mut st = State {
            image: base.as_ref().map(|b| b.id.clone()),
            cfg: base.as_ref().map(|b| b.config.clone()).unwrap_or_else(|| {
                let mut c = ImageConfig {
                    architecture: Some("amd64".into()),
                    os: Some("linux".into()),
                    ..Default::default()
                };
                c.rootfs.kind = "layers".into();
                c.config = Some(Default::default());
                c
            }),
            args: BTreeMap::new(),
            shell: DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
            cmd_set: false,
            maintainer: String::new(),
        };
        if let Some(shell) = st
            .cfg
            .config
            .as_ref()
            .and_then(|c| c.extra.get("Shell"))
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|s| !s.is_empty())
        {
            st.shell = shell;
        }
        let short = st
            .image
            .as_deref()
            .map(stream::short)
            .unwrap_or("")
            .to_string();
        self.say(&format!(" ---> {short}\n"))?;
        // ONBUILD triggers of the base
        let triggers: Vec<String> = st
            .cfg
            .config
            .as_ref()
            .and_then(|c| c.extra.get("OnBuild"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if !triggers.is_empty() {
            if let Some(c) = st.cfg.config.as_mut() {
                c.extra.remove("OnBuild");
            }
            self.say(&format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() > 1 { "s" } else { "" }
            ))?;
            for t in &triggers {
                let ins =
                    crate::dockerfile::parse_trigger(t).map_err(|e| Error::User(e.to_string()))?;
                self.dispatch(df, idx, &mut st, &ins)?;
            }
        }
        for ins in &stage.instructions {
            self.print_step(&ins.original)?;
            self.dispatch(df, idx, &mut st, ins)?;
        }
        for (k, v) in labels {
            self.print_step(&format!("LABEL {k}={v}"))?;
            let ins = Instruction {
                line: 0,
                original: format!("LABEL {k}={v}"),
                kind: Kind::Label(vec![(k.clone(), v.clone())]),
            };
            self.dispatch(df, idx, &mut st, &ins)?;
        }
        Ok(st.image.clone().map(|id| ImageInfo { id, config: st.cfg }))
    }

    fn resolve_base(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        from: &str,
        platform: Option<&str>,
    ) -> Result<Option<ImageInfo>, Error> {
        if from.is_empty() {
            return Err(Error::User("base name (${}) should not be blank".into()));
        }
        if let Some(j) = df.stages[..idx]
            .iter()
            .rposition(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(from)))
        {
            return Ok(self.results[j].clone());
        }
        if from.eq_ignore_ascii_case("scratch") {
            return Ok(None);
        }
        self.image_for(from, platform).map(Some)
    }

    /// A local image, or pulled (always with `pull`).
    fn image_for(&mut self, name: &str, platform: Option<&str>) -> Result<ImageInfo, Error> {
        if !self.opts.pull {
            if let Some(i) = self.backend.lookup(name)? {
                return Ok(i);
            }
        }
        let domain = berth_image::Reference::parse(name)
            .map(|r| r.domain.clone())
            .map_err(|_| Error::User("invalid reference format".into()))?;
        let creds = self.opts.credentials_for(&domain).cloned();
        let out = &mut *self.out;
        let mut gone = false;
        let res = self.backend.pull(name, platform, creds.as_ref(), &mut |v| {
            if !gone && !out.send(stream::encode(v)) {
                gone = true;
            }
        });
        match res {
            Ok(i) => Ok(i),
            // a local image is fine when the registry does not have it (`pull` of a local base)
            Err(e) if self.opts.pull => match self.backend.lookup(name)? {
                Some(i) => Ok(i),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// The probe config of a metadata step: the state's config with docker's comment Cmd.
    fn comment_config(st: &State, cmd: Vec<String>) -> Value {
        let mut cc = st.cfg.config.clone().unwrap_or_default();
        cc.cmd = Some(cmd);
        let mut v = ser(&cc);
        if let Value::Object(m) = &mut v {
            m.insert("Image".into(), json!(st.image.clone().unwrap_or_default()));
        }
        v
    }

    /// A cached image for this step, if any (and still present): the cache index, then the
    /// `cachefrom` images by their history (docker's rule: the parent's history and layers
    /// are a prefix of the source's, and the source's next entry is this step).
    fn probe(
        &mut self,
        st: &State,
        cc: &Value,
        extra: &str,
        created_by: &str,
    ) -> Result<Option<ImageInfo>, Error> {
        if self.opts.nocache {
            return Ok(None);
        }
        let k = cache::key(st.image.as_deref(), cc, extra);
        if let Some(id) = self.cache.get(&k) {
            if let Some(img) = self.backend.lookup(&id)? {
                return Ok(Some(img));
            }
        }
        let (ph, pl): (&[Value], &[String]) = match &st.image {
            Some(_) => (&st.cfg.history, &st.cfg.rootfs.diff_ids),
            None => (&[], &[]),
        };
        let n = ph.len();
        let same_entry = |a: &Value, b: &Value| {
            a.get("created_by") == b.get("created_by")
                && a.get("empty_layer")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    == b.get("empty_layer")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
        };
        let found = self.cache_from.iter().find(|t| {
            let th = &t.config.history;
            th.len() > n
                && th[..n].iter().zip(ph).all(|(a, b)| same_entry(a, b))
                && t.config.rootfs.diff_ids.starts_with(pl)
                && th[n].get("created_by").and_then(Value::as_str) == Some(created_by)
        });
        let Some(t) = found.cloned() else {
            return Ok(None);
        };
        if t.config.history.len() == n + 1 {
            return Ok(Some(t));
        }
        // an image of this step rebuilt from the source's history entry and layer
        let entry = t.config.history[n].clone();
        let empty = entry
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let layer_ix = t.config.history[..n]
            .iter()
            .filter(|h| {
                !h.get("empty_layer")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .count();
        let mut cfg = st.cfg.clone();
        cfg.history.push(entry.clone());
        if !empty {
            match t.config.rootfs.diff_ids.get(layer_ix) {
                Some(d) => cfg.rootfs.diff_ids.push(d.clone()),
                None => return Ok(None),
            }
        }
        cfg.created = entry
            .get("created")
            .and_then(Value::as_str)
            .map(String::from);
        cfg.extra.insert("container_config".into(), cc.clone());
        if cfg.rootfs.kind.is_empty() {
            cfg.rootfs.kind = "layers".into();
        }
        let bytes = serde_json::to_vec(&cfg).map_err(|e| Error::Internal(e.to_string()))?;
        let id = self.backend.put_image(&bytes, st.image.as_deref(), false)?;
        self.cache.put(&k, &id);
        self.written.insert(id.clone());
        Ok(Some(ImageInfo { id, config: cfg }))
    }

    fn use_cached(&mut self, st: &mut State, img: ImageInfo) -> Result<(), Error> {
        self.say(" ---> Using cache\n")?;
        self.say(&format!(" ---> {}\n", stream::short(&img.id)))?;
        st.image = Some(img.id);
        st.cfg = img.config;
        Ok(())
    }

    /// Writes the step's image: the state's config (the next config), `cc` as its
    /// container_config, a history entry, the layer (None or the empty layer: `empty_layer`).
    fn commit_image(
        &mut self,
        st: &mut State,
        cc: Value,
        created_by: String,
        diff_id: Option<String>,
        container: Option<&str>,
        extra: &str,
    ) -> Result<(), Error> {
        let key = cache::key(st.image.as_deref(), &cc, extra);
        let mut cfg = st.cfg.clone();
        let t = now();
        cfg.created = Some(t.clone());
        cfg.author = Some(st.maintainer.clone()).filter(|m| !m.is_empty());
        cfg.extra.remove("comment");
        match container {
            Some(c) => cfg.extra.insert("container".into(), json!(c)),
            None => cfg.extra.remove("container"),
        };
        cfg.extra.insert("container_config".into(), cc);
        if let Some(c) = cfg.config.as_mut() {
            c.extra
                .insert("Image".into(), json!(st.image.clone().unwrap_or_default()));
        }
        if cfg.architecture.is_none() {
            cfg.architecture = Some("amd64".into());
        }
        if cfg.os.is_none() {
            cfg.os = Some("linux".into());
        }
        if cfg.rootfs.kind.is_empty() {
            cfg.rootfs.kind = "layers".into();
        }
        let empty = match diff_id {
            Some(d) if d != berth_engine::EMPTY_LAYER_DIFF_ID => {
                cfg.rootfs.diff_ids.push(d);
                false
            }
            _ => true,
        };
        let mut h = serde_json::Map::new();
        h.insert("created".into(), json!(t));
        h.insert("created_by".into(), json!(created_by));
        if let Some(a) = &cfg.author {
            h.insert("author".into(), json!(a));
        }
        if empty {
            h.insert("empty_layer".into(), json!(true));
        }
        cfg.history.push(Value::Object(h));
        let bytes = serde_json::to_vec(&cfg).map_err(|e| Error::Internal(e.to_string()))?;
        let id = self.backend.put_image(&bytes, st.image.as_deref(), false)?;
        self.cache.put(&key, &id);
        self.written.insert(id.clone());
        st.image = Some(id.clone());
        st.cfg = cfg;
        self.say(&format!(" ---> {}\n", stream::short(&id)))
    }

    /// A metadata-only step: cache, else a config-only image.
    fn meta_step(&mut self, st: &mut State, comment: &str) -> Result<(), Error> {
        let cmd: Vec<String> = st
            .shell
            .iter()
            .cloned()
            .chain(["#(nop) ".to_string(), comment.to_string()])
            .collect();
        let created_by = cmd.join(" ");
        let cc = Self::comment_config(st, cmd);
        if let Some(img) = self.probe(st, &cc, "", &created_by)? {
            return self.use_cached(st, img);
        }
        self.commit_image(st, cc, created_by, None, None, "")
    }

    fn config_mut(st: &mut State) -> &mut berth_image::ContainerConfig {
        st.cfg.config.get_or_insert_with(Default::default)
    }

    fn dispatch(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        st: &mut State,
        ins: &Instruction,
    ) -> Result<(), Error> {
        match &ins.kind {
            Kind::From { .. } => Err(Error::User("FROM inside a stage".into())),
            Kind::Run {
                cmd,
                heredocs,
                flags,
            } => {
                // BuildKit's RUN flags: --network is honoured; the others need BuildKit
                let mut network = None;
                for (k, v) in flags {
                    match k.as_str() {
                        "network" => network = Some(v.clone()),
                        other => {
                            return Err(Error::User(format!(
                                "the --{other} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"
                            )))
                        }
                    }
                }
                self.run_step(st, cmd, heredocs, network.as_deref())
            }
            Kind::Cmd(c) => {
                let v = self.command(st, c);
                Self::config_mut(st).cmd = Some(v.clone());
                st.cmd_set = true;
                self.meta_step(st, &format!("CMD {}", go_quote_list(&v)))
            }
            Kind::Entrypoint(c) => {
                let v = self.command(st, c);
                let cmd_set = st.cmd_set;
                let cfg = Self::config_mut(st);
                cfg.entrypoint = Some(v.clone());
                if !cmd_set {
                    cfg.cmd = None;
                }
                self.meta_step(st, &format!("ENTRYPOINT {}", go_quote_list(&v)))
            }
            Kind::Shell(v) => {
                if v.is_empty() {
                    return Err(Error::User("SHELL requires at least one argument".into()));
                }
                st.shell = v.clone();
                Self::config_mut(st).extra.insert("Shell".into(), json!(v));
                self.meta_step(st, &format!("SHELL [{}]", v.join(" ")))
            }
            Kind::Env(pairs) => {
                // every word is expanded with the state before the instruction (docker)
                let pairs = pairs
                    .iter()
                    .map(|(k, v)| Ok((self.expand(st, k)?, self.expand(st, v)?)))
                    .collect::<Result<Vec<_>, Error>>()?;
                let mut comment = String::from("ENV");
                for (k, v) in pairs {
                    let env = Self::config_mut(st).env.get_or_insert_with(Vec::new);
                    match env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(slot) => *slot = format!("{k}={v}"),
                        None => env.push(format!("{k}={v}")),
                    }
                    comment.push_str(&format!(" {k}={v}"));
                }
                self.meta_step(st, &comment)
            }
            Kind::Arg(list) => {
                let list = list
                    .iter()
                    .map(|(n, d)| {
                        let d = match d {
                            Some(d) => Some(self.expand(st, d)?),
                            None => None,
                        };
                        Ok((n.clone(), d))
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                let mut comment = String::from("ARG");
                for (name, default) in &list {
                    let v = match self.opts.build_args.get(name) {
                        Some(v) => v.clone(),
                        None => match (&default, self.meta.get(name)) {
                            (None, Some(m)) => m.clone(),
                            _ => default.clone(),
                        },
                    };
                    self.used_args.insert(name.clone());
                    st.args.insert(name.clone(), v);
                    match &default {
                        Some(d) => comment.push_str(&format!(" {name}={d}")),
                        None => comment.push_str(&format!(" {name}")),
                    }
                }
                self.meta_step(st, &comment)
            }
            Kind::Label(pairs) => {
                let pairs = pairs
                    .iter()
                    .map(|(k, v)| Ok((self.expand(st, k)?, self.expand(st, v)?)))
                    .collect::<Result<Vec<_>, Error>>()?;
                let mut comment = String::from("LABEL");
                for (k, v) in pairs {
                    Self::config_mut(st)
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert(k.clone(), v.clone());
                    comment.push_str(&format!(" {k}={v}"));
                }
                self.meta_step(st, &comment)
            }
            Kind::Expose(ports) => {
                let mut list = Vec::new();
                for p in ports {
                    list.extend(self.expand_split(st, p)?);
                }
                let exposed = Self::config_mut(st)
                    .exposed_ports
                    .get_or_insert_with(Default::default);
                for p in &list {
                    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    let proto = proto.to_ascii_lowercase();
                    match port.split_once('-') {
                        Some((a, b)) => {
                            let (a, b): (u32, u32) = (
                                a.parse().map_err(|_| {
                                    Error::User(format!("invalid containerPort: {p}"))
                                })?,
                                b.parse().map_err(|_| {
                                    Error::User(format!("invalid containerPort: {p}"))
                                })?,
                            );
                            for n in a..=b {
                                exposed.insert(format!("{n}/{proto}"), json!({}));
                            }
                        }
                        None => {
                            port.parse::<u32>().map_err(|_| {
                                Error::User(format!("invalid containerPort: {port}"))
                            })?;
                            exposed.insert(format!("{port}/{proto}"), json!({}));
                        }
                    }
                }
                let mut sorted = list.clone();
                sorted.sort();
                self.meta_step(st, &format!("EXPOSE {}", sorted.join(" ")))
            }
            Kind::Volume(vols) => {
                let mut list = Vec::new();
                for v in vols {
                    let v = self.expand(st, v)?;
                    if v.trim().is_empty() {
                        return Err(Error::User(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    list.push(v);
                }
                let m = Self::config_mut(st)
                    .volumes
                    .get_or_insert_with(Default::default);
                for v in &list {
                    m.insert(v.clone(), json!({}));
                }
                self.meta_step(st, &format!("VOLUME [{}]", list.join(" ")))
            }
            Kind::User(u) => {
                let u = self.expand(st, u)?;
                Self::config_mut(st).user = Some(u.clone());
                self.meta_step(st, &format!("USER {u}"))
            }
            Kind::Stopsignal(s) => {
                let s = self.expand(st, s)?;
                Self::config_mut(st).stop_signal = Some(s.clone());
                self.meta_step(st, &format!("STOPSIGNAL {s}"))
            }
            Kind::Maintainer(m) => {
                st.maintainer = m.clone();
                self.meta_step(st, &format!("MAINTAINER {m}"))
            }
            Kind::Onbuild(inner) => {
                let text = ins
                    .trigger_text()
                    .unwrap_or_else(|| inner.original.trim().to_string());
                let cfg = Self::config_mut(st);
                let mut list: Vec<String> = cfg
                    .extra
                    .get("OnBuild")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                list.push(text.clone());
                cfg.extra.insert("OnBuild".into(), json!(list));
                self.meta_step(st, &format!("ONBUILD {text}"))
            }
            Kind::Healthcheck(h) => self.healthcheck(st, h),
            Kind::Workdir(w) => self.workdir_step(st, w),
            Kind::Copy(spec) | Kind::Add(spec) => {
                let add = matches!(ins.kind, Kind::Add(_));
                self.copy_step(df, idx, st, spec, add)
            }
        }
    }

    /// Shell form → the stage's SHELL + the line; exec form as is.
    fn command(&self, st: &State, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => st.shell.iter().cloned().chain([s.clone()]).collect(),
        }
    }

    fn healthcheck(&mut self, st: &mut State, h: &Healthcheck) -> Result<(), Error> {
        let mut v = serde_json::Map::new();
        v.insert("Test".into(), json!(h.test));
        let mut durs = Vec::new();
        for (name, d) in [
            ("Interval", &h.interval),
            ("Timeout", &h.timeout),
            ("StartPeriod", &h.start_period),
        ] {
            let n = match d {
                Some(s) => parse_duration(s)?,
                None => 0,
            };
            if n != 0 {
                v.insert(name.into(), json!(n));
            }
            durs.push(d.clone().unwrap_or_else(|| "0s".into()));
        }
        let retries: i64 = match &h.retries {
            Some(r) => r
                .parse()
                .map_err(|_| Error::User(format!("invalid retries: {r}")))?,
            None => 0,
        };
        if retries != 0 {
            v.insert("Retries".into(), json!(retries));
        }
        let none = h.test.first().map(String::as_str) == Some("NONE");
        Self::config_mut(st)
            .extra
            .insert("Healthcheck".into(), Value::Object(v));
        let comment = if none {
            "HEALTHCHECK &{[\"NONE\"] \"0s\" \"0s\" \"0s\" '\\x00'}".to_string()
        } else {
            format!(
                "HEALTHCHECK &{{{} \"{}\" \"{}\" \"{}\" '\\x{:02x}'}}",
                go_quote_list(&h.test),
                durs[0],
                durs[1],
                durs[2],
                retries
            )
        };
        self.meta_step(st, &comment)
    }

    /// The env of a RUN: the config's, plus the build args allowed (declared with a value,
    /// not overridden by ENV; proxy args when given), and the saved form's `|N a=b` prefix.
    fn run_env(&self, st: &State) -> (Vec<String>, Vec<String>) {
        let env = st
            .cfg
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        let in_env = |k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
        let mut args = Vec::new();
        let mut saved = Vec::new();
        for (k, v) in &st.args {
            if let Some(v) = v {
                if !in_env(k) {
                    args.push(format!("{k}={v}"));
                    saved.push(format!("{k}={v}"));
                }
            }
        }
        for p in PROXY_ARGS {
            if st.args.contains_key(*p) || in_env(p) {
                continue;
            }
            if let Some(Some(v)) = self.opts.build_args.get(*p) {
                args.push(format!("{p}={v}"));
            }
        }
        saved.sort();
        (args, saved)
    }

    fn run_step(
        &mut self,
        st: &mut State,
        cmd: &Command,
        heredocs: &[crate::dockerfile::Heredoc],
        network: Option<&str>,
    ) -> Result<(), Error> {
        let Some(image) = st.image.clone() else {
            return Err(Error::User(
                "failed to create the RUN container: the image has no filesystem (FROM scratch)"
                    .into(),
            ));
        };
        let argv = match (cmd, heredocs.first()) {
            (Command::Shell(s), Some(h)) if s.trim().starts_with("<<") && heredocs.len() == 1 => st
                .shell
                .iter()
                .cloned()
                .chain([h.content.clone()])
                .collect(),
            (Command::Shell(s), Some(_)) => {
                let mut script = s.clone();
                script.push('\n');
                for h in heredocs {
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                    script.push('\n');
                }
                st.shell.iter().cloned().chain([script]).collect()
            }
            _ => self.command(st, cmd),
        };
        let (args, saved) = self.run_env(st);
        let save_cmd: Vec<String> = if saved.is_empty() {
            argv.clone()
        } else {
            std::iter::once(format!("|{}", saved.len()))
                .chain(saved)
                .chain(argv.iter().cloned())
                .collect()
        };
        let mut cc = st.cfg.config.clone().unwrap_or_default();
        cc.cmd = Some(save_cmd.clone());
        cc.entrypoint = None;
        let mut ccv = ser(&cc);
        if let Value::Object(m) = &mut ccv {
            m.insert("Image".into(), json!(image));
        }
        let extra = network.map(|n| format!("network={n}")).unwrap_or_default();
        if let Some(img) = self.probe(st, &ccv, &extra, &save_cmd.join(" "))? {
            return self.use_cached(st, img);
        }
        let cfg = st.cfg.config.clone().unwrap_or_default();
        let mut env = cfg.env.clone().unwrap_or_default();
        env.extend(args);
        let mut hc = serde_json::Map::new();
        let o = self.opts;
        match (network, &o.network_mode) {
            // RUN --network=default: the build's own network
            (Some(n), _) if n != "default" => {
                hc.insert("NetworkMode".into(), json!(n));
            }
            (_, Some(n)) => {
                hc.insert("NetworkMode".into(), json!(n));
            }
            _ => {}
        }
        if !o.extra_hosts.is_empty() {
            hc.insert("ExtraHosts".into(), json!(o.extra_hosts));
        }
        for (k, v) in [
            ("ShmSize", o.shm_size),
            ("Memory", o.memory),
            ("MemorySwap", o.memswap),
            ("CpuShares", o.cpu_shares),
            ("CpuPeriod", o.cpu_period),
            ("CpuQuota", o.cpu_quota),
        ] {
            if let Some(v) = v.filter(|v| *v != 0) {
                hc.insert(k.into(), json!(v));
            }
        }
        if let Some(c) = &o.cpuset_cpus {
            hc.insert("CpusetCpus".into(), json!(c));
        }
        if let Some(c) = &o.cpuset_mems {
            hc.insert("CpusetMems".into(), json!(c));
        }
        if !o.ulimits.is_empty() {
            hc.insert("Ulimits".into(), json!(o.ulimits));
        }
        if let Some(c) = &o.cgroup_parent {
            hc.insert("CgroupParent".into(), json!(c));
        }
        let spec = RunSpec {
            image: image.clone(),
            cmd: argv.clone(),
            env,
            user: cfg.user.clone().unwrap_or_default(),
            workdir: cfg.working_dir.clone().unwrap_or_default(),
            host_config: hc,
        };
        let cell = std::cell::RefCell::new((&mut *self.out, false));
        let res = self.backend.run(
            &spec,
            &mut |id| {
                let mut c = cell.borrow_mut();
                let line = stream::stream(&format!(" ---> Running in {}\n", stream::short(id)));
                if !c.0.send(line) {
                    c.1 = true;
                }
            },
            &mut |data| {
                let mut c = cell.borrow_mut();
                if !c.1 && !c.0.send(stream::stream(&String::from_utf8_lossy(data))) {
                    c.1 = true;
                }
            },
        );
        let gone = cell.into_inner().1;
        let (id, code) = match res {
            Ok(r) => r,
            Err((id, e)) => {
                if let Some(id) = id {
                    if self.opts.forcerm || matches!(e, Error::Cancelled) || gone {
                        let _ = self.backend.remove(&id);
                    }
                }
                return Err(e);
            }
        };
        if gone || self.backend.cancelled() {
            let _ = self.backend.remove(&id);
            return Err(Error::Cancelled);
        }
        if code != 0 {
            if self.opts.forcerm {
                let _ = self.backend.remove(&id);
            }
            return Err(Error::Run {
                message: format!(
                    "The command '{}' returned a non-zero code: {code}",
                    argv.join(" ")
                ),
                code,
            });
        }
        let diff = match self.backend.commit(&id) {
            Ok(d) => d,
            Err(e) => {
                if self.opts.rm || self.opts.forcerm {
                    let _ = self.backend.remove(&id);
                }
                return Err(e);
            }
        };
        if self.opts.rm || self.opts.forcerm {
            self.say(&format!(
                "Removing intermediate container {}\n",
                stream::short(&id)
            ))?;
            self.backend.remove(&id)?;
        }
        self.commit_image(st, ccv, save_cmd.join(" "), Some(diff), Some(&id), &extra)
    }

    fn workdir_step(&mut self, st: &mut State, w: &str) -> Result<(), Error> {
        let w = self.expand(st, w)?;
        let cur = st
            .cfg
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_default();
        let joined = if w.starts_with('/') {
            w.clone()
        } else {
            format!("{}/{}", if cur.is_empty() { "/" } else { &cur }, w)
        };
        let dir = clean_path(&joined);
        Self::config_mut(st).working_dir = Some(dir.clone());
        let cmd: Vec<String> = st
            .shell
            .iter()
            .cloned()
            .chain([format!("#(nop) WORKDIR {dir}")])
            .collect();
        let created_by = cmd.join(" ");
        let cc = Self::comment_config(st, cmd);
        if let Some(img) = self.probe(st, &cc, "", &created_by)? {
            return self.use_cached(st, img);
        }
        // the directory is made, as docker does, unless it is there
        let missing: Vec<String> = {
            let m = self.backend.mount(st.image.as_deref())?;
            let mut acc = String::new();
            let mut missing = Vec::new();
            for part in dir.split('/').filter(|p| !p.is_empty()) {
                acc.push('/');
                acc.push_str(part);
                let exists = berth_util::inroot::open_root(m.path())
                    .and_then(|root| {
                        use std::os::fd::AsFd;
                        berth_util::inroot::open_in_root(
                            root.as_fd(),
                            Path::new(acc.trim_start_matches('/')),
                            libc::O_PATH,
                        )
                    })
                    .is_ok();
                if !exists {
                    missing.push(acc.trim_start_matches('/').to_string());
                }
            }
            missing
        };
        let diff = if missing.is_empty() {
            None
        } else {
            Some(self.backend.add_layer(st.image.as_deref(), &mut |w| {
                let mut b = tar::Builder::new(w);
                for d in &missing {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_uid(0);
                    h.set_gid(0);
                    h.set_size(0);
                    h.set_mtime(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0),
                    );
                    b.append_data(&mut h, format!("{d}/"), std::io::empty())?;
                }
                b.finish()
            })?)
        };
        self.commit_image(st, cc, created_by, diff, None, "")
    }

    fn copy_step(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        st: &mut State,
        spec: &crate::dockerfile::CopySpec,
        add: bool,
    ) -> Result<(), Error> {
        let name = if add { "ADD" } else { "COPY" };
        let mut srcs = Vec::new();
        for s in &spec.srcs {
            srcs.push(self.expand(st, s)?);
        }
        let dest = self.expand(st, &spec.dest)?;
        let workdir = st
            .cfg
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_default();
        // where the sources come from
        let from_image: Option<Option<String>> = match &spec.from {
            None => None,
            Some(f) => {
                let f = self.expand(st, f)?;
                let stage = match f.parse::<usize>() {
                    Ok(i) if i < idx => Some(i),
                    Ok(_) => {
                        return Err(Error::User(format!(
                            "invalid from flag value {f}: refers to current build stage"
                        )))
                    }
                    Err(_) => df.stages[..idx]
                        .iter()
                        .rposition(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(&f))),
                };
                match stage {
                    Some(i) => Some(self.results[i].as_ref().map(|r| r.id.clone())),
                    None => Some(Some(self.image_for(&f, None)?.id)),
                }
            }
        };
        let dest_root = self.backend.mount(st.image.as_deref())?;
        let from_mount = match &from_image {
            Some(img) => Some(self.backend.mount(img.as_deref())?),
            None => None,
        };
        let chown = match &spec.chown {
            Some(c) => Some(resolve_chown(&self.expand(st, c)?, dest_root.path())?),
            None => None,
        };
        let chmod = match &spec.chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| Error::User(format!("invalid chmod parameter: {m}")))?,
            ),
            None => None,
        };
        let req = crate::copy::Request {
            srcs,
            dest: dest.clone(),
            workdir: workdir.clone(),
            chown,
            chmod,
            add,
            heredocs: spec
                .heredocs
                .iter()
                .map(|h| {
                    let content = if h.expand {
                        self.expand_keep(st, &h.content)?
                    } else {
                        h.content.clone()
                    };
                    Ok((h.name.clone(), content))
                })
                .collect::<Result<_, Error>>()?,
        };
        let source = match (&from_mount, &self.context) {
            (Some(m), _) => crate::copy::Source {
                root: m.path(),
                ignore: None,
                is_context: false,
            },
            (None, Some(c)) => crate::copy::Source {
                root: c.root,
                ignore: c.ignore,
                is_context: true,
            },
            (None, None) => return Err(Error::User(format!("{name} failed: no build context"))),
        };
        let plan = crate::copy::plan(&source, &req, dest_root.path()).map_err(|e| match e {
            crate::copy::CopyError::User(m) => Error::User(m),
            crate::copy::CopyError::Io(e) => Error::Internal(e.to_string()),
        })?;
        let key = plan.cache_key();
        // docker writes the destination as given
        let cmd: Vec<String> = st
            .shell
            .iter()
            .cloned()
            .chain([format!("#(nop) {name} {key} in {dest} ")])
            .collect();
        let created_by = cmd.join(" ");
        let cc = Self::comment_config(st, cmd);
        let extra = format!("chown={:?} chmod={:?}", req.chown, req.chmod);
        if let Some(img) = self.probe(st, &cc, &extra, &created_by)? {
            return self.use_cached(st, img);
        }
        let mut failed: Option<crate::copy::CopyError> = None;
        let diff = self.backend.add_layer(st.image.as_deref(), &mut |w| {
            plan.write_layer(w).map_err(|e| {
                let io = std::io::Error::other(e.to_string());
                failed = Some(e);
                io
            })
        });
        // the sources are read from the mounts while the layer is written
        drop(from_mount);
        drop(dest_root);
        let diff = match (diff, failed) {
            (Ok(d), _) => d,
            (Err(_), Some(crate::copy::CopyError::User(m))) => return Err(Error::User(m)),
            (Err(e), _) => return Err(e),
        };
        self.commit_image(st, cc, created_by, Some(diff), None, &extra)
    }
}

/// `path.Clean` for absolute paths.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `--chown=user[:group]` → numeric ids, names looked up in the image's /etc/passwd, group.
fn resolve_chown(spec: &str, rootfs: &Path) -> Result<(u32, u32), Error> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |f: &str| -> String {
        berth_util::inroot::read_regular(rootfs, Path::new(f), 4 << 20)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
        read(file).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| {
                let id = f[2].parse().unwrap_or(0);
                let gid = f.get(3).and_then(|x| x.parse().ok()).unwrap_or(id);
                (id, gid)
            })
        })
    };
    let (uid, pgid) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup("etc/passwd", u).ok_or_else(|| {
            Error::User(format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {u}: no such user: {u}"
            ))
        })?,
    };
    let gid = match g {
        None => pgid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("etc/group", g).map(|x| x.0).ok_or_else(|| {
                Error::User(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                ))
            })?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_paths() {
        assert_eq!(go_quote_list(&["sh".into()]), "[\"sh\"]");
        assert_eq!(
            go_quote_list(&["/bin/sh".into(), "-c".into(), "cat /x".into()]),
            "[\"/bin/sh\" \"-c\" \"cat /x\"]"
        );
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert!(parse_duration("5x").is_err());
        assert_eq!(clean_path("/a/./b/../c"), "/a/c");
    }
}
