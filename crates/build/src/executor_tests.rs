//! The executor's logic through a backend of the tests' own (images in memory, RUN
//! simulated): steps, history, cache, build args, failures, stages, triggers, cancellation.

use crate::backend::{Backend, ImageInfo, Mounted, RunSpec};
use crate::cache::Cache;
use crate::dockerfile::{Command, Dockerfile, Instruction, Kind, Stage};
use crate::executor::Executor;
use crate::stream::{Collect, Output};
use crate::{BuildOptions, Error};
use berth_image::ImageConfig;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Default)]
struct Fake {
    images: Mutex<HashMap<String, (ImageConfig, Option<String>)>>,
    containers: Mutex<Vec<String>>,
    runs: Mutex<Vec<RunSpec>>,
    removed: Mutex<Vec<String>>,
    n: AtomicUsize,
    cancel: AtomicBool,
    /// the client goes away while the RUN runs
    cancel_in_run: AtomicBool,
    pulls: AtomicUsize,
}

struct Dir(tempfile::TempDir);
impl Mounted for Dir {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

impl Fake {
    fn with_base() -> Fake {
        let f = Fake::default();
        let cfg: ImageConfig = serde_json::from_value(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created_by": "/bin/sh -c #(nop) ADD file:x in / "}]
        }))
        .unwrap();
        f.images
            .lock()
            .unwrap()
            .insert("busybox".into(), (cfg, None));
        f
    }
    fn count(&self) -> usize {
        self.images.lock().unwrap().len()
    }
}

impl Backend for Fake {
    fn lookup(&self, name: &str) -> Result<Option<ImageInfo>, Error> {
        Ok(self
            .images
            .lock()
            .unwrap()
            .get(name)
            .map(|(c, _)| ImageInfo {
                id: if name.starts_with("sha256:") {
                    name.to_string()
                } else {
                    format!("sha256:{}", "b".repeat(64))
                },
                config: c.clone(),
            }))
    }
    fn pull(
        &self,
        name: &str,
        _: Option<&str>,
        _: Option<&Value>,
        progress: &mut dyn FnMut(&Value),
    ) -> Result<ImageInfo, Error> {
        self.pulls.fetch_add(1, Ordering::SeqCst);
        progress(&serde_json::json!({"status": "Pulling from library/x"}));
        self.lookup(name)?
            .ok_or_else(|| Error::NotFound(format!("pull access denied for {name}")))
    }
    fn run(
        &self,
        spec: &RunSpec,
        started: &mut dyn FnMut(&str),
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<(String, i64), (Option<String>, Error)> {
        let id = format!("{:064x}", self.n.fetch_add(1, Ordering::SeqCst) + 0xc0ffee);
        self.containers.lock().unwrap().push(id.clone());
        self.runs.lock().unwrap().push(spec.clone());
        started(&id);
        let line = spec.cmd.last().cloned().unwrap_or_default();
        output(format!("ran {line}\n").as_bytes());
        if self.cancel_in_run.load(Ordering::SeqCst) {
            self.cancel.store(true, Ordering::SeqCst);
            return Err((Some(id), Error::Cancelled));
        }
        let code = if line.contains("exit 3") {
            3
        } else if line.contains("false") {
            1
        } else {
            0
        };
        Ok((id, code))
    }
    fn commit(&self, container: &str) -> Result<String, Error> {
        Ok(sha(container.as_bytes()))
    }
    fn remove(&self, container: &str) -> Result<(), Error> {
        self.removed.lock().unwrap().push(container.to_string());
        Ok(())
    }
    fn add_layer(
        &self,
        _: Option<&str>,
        produce: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<String, Error> {
        let mut v = Vec::new();
        produce(&mut v).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(sha(&v))
    }
    fn put_image(&self, config: &[u8], parent: Option<&str>, _: bool) -> Result<String, Error> {
        let id = sha(config);
        let cfg: ImageConfig = serde_json::from_slice(config).unwrap();
        self.images
            .lock()
            .unwrap()
            .insert(id.clone(), (cfg, parent.map(String::from)));
        Ok(id)
    }
    fn parent(&self, image: &str) -> Option<String> {
        self.images
            .lock()
            .unwrap()
            .get(image)
            .and_then(|x| x.1.clone())
    }
    fn mount(&self, _: Option<&str>) -> Result<Box<dyn Mounted>, Error> {
        Ok(Box::new(Dir(tempfile::tempdir().unwrap())))
    }
    fn tag(&self, _: &str, reference: &str) -> Result<String, Error> {
        Ok(reference.to_string())
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

fn ins(original: &str, kind: Kind) -> Instruction {
    Instruction {
        line: 1,
        original: original.into(),
        kind,
    }
}

fn from(image: &str, alias: Option<&str>) -> Instruction {
    ins(
        &match alias {
            Some(a) => format!("FROM {image} AS {a}"),
            None => format!("FROM {image}"),
        },
        Kind::From {
            image: image.into(),
            alias: alias.map(String::from),
            platform: None,
        },
    )
}

fn run(cmd: &str) -> Instruction {
    ins(
        &format!("RUN {cmd}"),
        Kind::Run {
            cmd: Command::Shell(cmd.into()),
            heredocs: vec![],
            flags: vec![],
        },
    )
}

fn df(stages: Vec<(Instruction, Vec<Instruction>)>) -> Dockerfile {
    Dockerfile {
        escape: '\\',
        syntax: None,
        meta_args: vec![],
        warnings: vec![],
        stages: stages
            .into_iter()
            .map(|(from, instructions)| Stage { from, instructions })
            .collect(),
    }
}

fn build(
    b: &Fake,
    cache: &Cache,
    opts: &BuildOptions,
    d: &Dockerfile,
) -> (Result<String, Error>, String) {
    let mut out = Collect::default();
    let r = Executor::new(b, opts, cache, None, &mut out).run(d);
    (r, out.text())
}

fn opts() -> BuildOptions {
    BuildOptions {
        rm: true,
        ..Default::default()
    }
}

fn history(b: &Fake, id: &str) -> Vec<Value> {
    b.images.lock().unwrap()[id].0.history.clone()
}

fn simple() -> Dockerfile {
    df(vec![(
        from("busybox", None),
        vec![
            ins(
                "ENV A=1",
                Kind::Env(vec![("A".into(), "\"one two\"".into())]),
            ),
            run("echo x > /x"),
            ins("CMD cat /x", Kind::Cmd(Command::Shell("cat /x".into()))),
        ],
    )])
}

#[test]
fn steps_history_and_config_are_dockers() {
    let b = Fake::with_base();
    let cache = Cache::in_memory();
    let (r, text) = build(&b, &cache, &opts(), &simple());
    let id = r.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Step 1/4 : FROM busybox");
    assert_eq!(lines[1], format!(" ---> {}", "b".repeat(12)));
    assert_eq!(lines[2], "Step 2/4 : ENV A=1");
    assert!(
        lines[3].starts_with(" ---> ") && lines[3].len() == 18,
        "{text}"
    );
    assert_eq!(lines[4], "Step 3/4 : RUN echo x > /x");
    assert!(lines[5].starts_with(" ---> Running in "), "{text}");
    assert_eq!(lines[6], "ran echo x > /x");
    assert!(lines[7].starts_with("Removing intermediate container "));
    assert_eq!(lines[9], "Step 4/4 : CMD cat /x");
    let h = history(&b, &id);
    assert_eq!(h.len(), 4);
    assert_eq!(h[1]["created_by"], "/bin/sh -c #(nop)  ENV A=one two");
    assert_eq!(h[1]["empty_layer"], true);
    assert_eq!(h[2]["created_by"], "/bin/sh -c echo x > /x");
    assert!(h[2].get("empty_layer").is_none());
    assert_eq!(
        h[3]["created_by"],
        "/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"cat /x\"]"
    );
    let cfg = b.images.lock().unwrap()[&id].0.clone();
    let c = cfg.config.clone().unwrap();
    assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "cat /x"]);
    assert_eq!(c.env.unwrap(), ["PATH=/bin", "A=one two"]);
    assert_eq!(cfg.rootfs.diff_ids.len(), 2);
    assert_eq!(
        cfg.extra["container_config"]["Cmd"],
        serde_json::json!([
            "/bin/sh",
            "-c",
            "#(nop) ",
            "CMD [\"/bin/sh\" \"-c\" \"cat /x\"]"
        ])
    );
    // the RUN ran with the stage's env, its container was removed
    let runs = b.runs.lock().unwrap();
    assert_eq!(runs[0].env, ["PATH=/bin", "A=one two"]);
    assert_eq!(runs[0].cmd, ["/bin/sh", "-c", "echo x > /x"]);
    assert_eq!(b.removed.lock().unwrap().len(), 1);
    // every step left an image with its parent recorded
    assert_eq!(b.count(), 4);
    assert!(b.parent(&id).is_some());
}

#[test]
fn a_rebuild_uses_the_cache_and_nocache_does_not() {
    let b = Fake::with_base();
    let cache = Cache::in_memory();
    let first = build(&b, &cache, &opts(), &simple()).0.unwrap();
    let (r, text) = build(&b, &cache, &opts(), &simple());
    assert_eq!(r.unwrap(), first);
    assert_eq!(text.matches(" ---> Using cache").count(), 3, "{text}");
    assert_eq!(b.runs.lock().unwrap().len(), 1);
    // a changed step misses from there on
    let mut changed = simple();
    changed.stages[0].instructions[2] =
        ins("CMD cat /y", Kind::Cmd(Command::Shell("cat /y".into())));
    let (r, text) = build(&b, &cache, &opts(), &changed);
    assert_ne!(r.unwrap(), first);
    assert_eq!(text.matches(" ---> Using cache").count(), 2, "{text}");
    let o = BuildOptions {
        nocache: true,
        ..opts()
    };
    let (_, text) = build(&b, &cache, &o, &simple());
    assert!(!text.contains("Using cache"));
    assert_eq!(b.runs.lock().unwrap().len(), 2);
}

#[test]
fn a_failed_run_is_dockers_error_and_forcerm_removes_its_container() {
    let b = Fake::with_base();
    let cache = Cache::in_memory();
    let d = df(vec![(from("busybox", None), vec![run("exit 3")])]);
    match build(&b, &cache, &opts(), &d).0 {
        Err(Error::Run { message, code }) => {
            assert_eq!(
                message,
                "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
            );
            assert_eq!(code, 3);
        }
        other => panic!("{other:?}"),
    }
    // docker leaves the failed container without --force-rm
    assert!(b.removed.lock().unwrap().is_empty());
    let o = BuildOptions {
        forcerm: true,
        ..opts()
    };
    assert!(build(&b, &cache, &o, &d).0.is_err());
    assert_eq!(b.removed.lock().unwrap().len(), 1);
}

#[test]
fn build_args_reach_run_and_its_cache_key_but_proxies_do_not() {
    let b = Fake::with_base();
    let cache = Cache::in_memory();
    let d = df(vec![(
        from("busybox", None),
        vec![
            ins("ARG A=1", Kind::Arg(vec![("A".into(), Some("1".into()))])),
            run("echo $A"),
        ],
    )]);
    let mut o = opts();
    o.build_args.insert("A".into(), Some("zz".into()));
    o.build_args
        .insert("HTTP_PROXY".into(), Some("http://p".into()));
    o.build_args.insert("UNUSED".into(), Some("u".into()));
    let (r, text) = build(&b, &cache, &o, &d);
    let id = r.unwrap();
    let h = history(&b, &id);
    assert_eq!(h[1]["created_by"], "/bin/sh -c #(nop)  ARG A=1");
    assert_eq!(h[2]["created_by"], "|1 A=zz /bin/sh -c echo $A");
    let runs = b.runs.lock().unwrap();
    assert!(runs[0].env.contains(&"A=zz".to_string()));
    assert!(runs[0].env.contains(&"HTTP_PROXY=http://p".to_string()));
    // not persisted
    let cfg = b.images.lock().unwrap()[&id].0.clone();
    assert_eq!(cfg.config.unwrap().env.unwrap(), ["PATH=/bin"]);
    assert!(text.contains("[Warning] One or more build-args [UNUSED] were not consumed"));
}

#[test]
fn only_the_stages_the_target_needs_are_built() {
    let b = Fake::with_base();
    let cache = Cache::in_memory();
    let d = df(vec![
        (from("busybox", Some("base")), vec![run("echo base")]),
        (from("busybox", Some("unused")), vec![run("echo unused")]),
        (from("base", Some("final")), vec![run("echo final")]),
        (from("busybox", Some("after")), vec![run("echo after")]),
    ]);
    let o = BuildOptions {
        target: Some("final".into()),
        ..opts()
    };
    let (r, text) = build(&b, &cache, &o, &d);
    r.unwrap();
    assert!(text.contains("Step 1/4 : FROM busybox AS base"), "{text}");
    assert!(text.contains("Step 3/4 : FROM base AS final"), "{text}");
    let cmds: Vec<String> = b
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.cmd[2].clone())
        .collect();
    assert_eq!(cmds, ["echo base", "echo final"]);
    let o = BuildOptions {
        target: Some("nope".into()),
        ..opts()
    };
    match build(&b, &cache, &o, &d).0 {
        Err(Error::User(m)) => assert_eq!(m, "failed to reach build target nope in Dockerfile"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn labels_tags_and_metadata_instructions() {
    let b = Fake::with_base();
    let cache = Cache::in_memory();
    let d = df(vec![(
        from("busybox", None),
        vec![
            ins(
                "EXPOSE 80 53/udp",
                Kind::Expose(vec!["80".into(), "53/udp".into()]),
            ),
            ins("USER nobody", Kind::User("nobody".into())),
            ins("VOLUME /data", Kind::Volume(vec!["/data".into()])),
            ins(
                "ENTRYPOINT [\"top\"]",
                Kind::Entrypoint(Command::Exec(vec!["top".into()])),
            ),
            ins("STOPSIGNAL SIGUSR1", Kind::Stopsignal("SIGUSR1".into())),
        ],
    )]);
    let mut o = opts();
    o.labels.insert("k".into(), "v".into());
    let (r, text) = build(&b, &cache, &o, &d);
    let id = r.unwrap();
    assert!(text.contains("Step 7/7 : LABEL k=v"), "{text}");
    let cfg = b.images.lock().unwrap()[&id].0.clone();
    let c = cfg.config.unwrap();
    assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
    assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
    assert_eq!(c.user.as_deref(), Some("nobody"));
    assert!(c.volumes.unwrap().contains_key("/data"));
    assert_eq!(c.entrypoint.unwrap(), ["top"]);
    // ENTRYPOINT without a CMD in the stage resets the base's CMD
    assert!(c.cmd.is_none());
    assert_eq!(c.stop_signal.as_deref(), Some("SIGUSR1"));
    assert_eq!(c.labels.unwrap()["k"], "v");
    let h = cfg.history;
    assert_eq!(h[1]["created_by"], "/bin/sh -c #(nop)  EXPOSE 53/udp 80");
    assert_eq!(h[3]["created_by"], "/bin/sh -c #(nop)  VOLUME [/data]");
    assert_eq!(
        h[4]["created_by"],
        "/bin/sh -c #(nop)  ENTRYPOINT [\"top\"]"
    );
    assert!(
        b.runs.lock().unwrap().is_empty(),
        "no container for metadata"
    );
}

#[test]
fn a_client_that_goes_away_stops_the_build_and_its_container_goes() {
    let b = Fake::with_base();
    b.cancel_in_run.store(true, Ordering::SeqCst);
    let cache = Cache::in_memory();
    let d = df(vec![(from("busybox", None), vec![run("sleep 100")])]);
    struct Gone;
    impl Output for Gone {
        fn send(&mut self, _: Vec<u8>) -> bool {
            true
        }
    }
    let mut out = Gone;
    let r = Executor::new(&b, &opts(), &cache, None, &mut out).run(&d);
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    b.cancel.store(false, Ordering::SeqCst);
    b.cancel_in_run.store(false, Ordering::SeqCst);
    // the output side going away cancels too
    struct Closed(usize);
    impl Output for Closed {
        fn send(&mut self, _: Vec<u8>) -> bool {
            self.0 += 1;
            // Step, \n, --->, Step, \n, Running in: then gone
            self.0 < 7
        }
    }
    let mut out = Closed(0);
    let r = Executor::new(&b, &opts(), &cache, None, &mut out).run(&d);
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(b.removed.lock().unwrap().len(), 2);
}

#[test]
fn a_missing_base_is_pulled_and_pull_repulls() {
    let b = Fake::with_base();
    let cache = Cache::in_memory();
    let d = df(vec![(from("nothere", None), vec![])]);
    match build(&b, &cache, &opts(), &d).0 {
        Err(Error::NotFound(m)) => assert!(m.contains("nothere")),
        other => panic!("{other:?}"),
    }
    let o = BuildOptions {
        pull: true,
        ..opts()
    };
    let (r, text) = build(&b, &cache, &o, &simple());
    r.unwrap();
    assert!(text.is_empty() || text.starts_with("Step 1/4"));
    assert_eq!(b.pulls.load(Ordering::SeqCst), 2);
}

#[test]
fn onbuild_triggers_are_recorded_then_run_by_the_child() {
    let b = Fake::with_base();
    let cache = Cache::in_memory();
    let parent = df(vec![(
        from("busybox", None),
        vec![ins(
            "ONBUILD RUN echo trig",
            Kind::Onbuild(Box::new(run("echo trig"))),
        )],
    )]);
    let pid = build(&b, &cache, &opts(), &parent).0.unwrap();
    let cfg = b.images.lock().unwrap()[&pid].0.clone();
    assert_eq!(
        cfg.config.unwrap().extra["OnBuild"],
        serde_json::json!(["RUN echo trig"])
    );
    assert_eq!(
        cfg.history[1]["created_by"],
        "/bin/sh -c #(nop)  ONBUILD RUN echo trig"
    );
    // the trigger text is parsed by the Dockerfile parser: only once it exists
    if crate::parse("FROM scratch\nRUN x\n").is_err() {
        return;
    }
    let child = df(vec![(from(&pid, None), vec![])]);
    let (r, text) = build(&b, &cache, &opts(), &child);
    let id = r.unwrap();
    assert!(text.contains("# Executing 1 build trigger"), "{text}");
    assert!(text.contains("ran echo trig"), "{text}");
    let cfg = b.images.lock().unwrap()[&id].0.clone();
    assert!(cfg.config.unwrap().extra.get("OnBuild").is_none());
}

#[test]
fn cache_from_reuses_a_source_image_by_its_history() {
    let b = Fake::with_base();
    let first = build(&b, &Cache::in_memory(), &opts(), &simple())
        .0
        .unwrap();
    let runs = b.runs.lock().unwrap().len();
    // a new cache (another daemon, or the index lost): nothing is reused...
    let (r, text) = build(&b, &Cache::in_memory(), &opts(), &simple());
    assert_ne!(r.unwrap(), first);
    assert!(!text.contains("Using cache"));
    // ...unless the image is given as a cache source: every step, the same final image
    let o = BuildOptions {
        cache_from: vec![first.clone()],
        ..opts()
    };
    let (r, text) = build(&b, &Cache::in_memory(), &o, &simple());
    assert_eq!(r.unwrap(), first);
    assert_eq!(text.matches("Using cache").count(), 3, "{text}");
    assert_eq!(b.runs.lock().unwrap().len(), runs + 1);
    // a different step stops the reuse there
    let mut changed = simple();
    changed.stages[0].instructions[1] = run("echo other");
    let (_, text) = build(&b, &Cache::in_memory(), &o, &changed);
    assert_eq!(text.matches("Using cache").count(), 1, "{text}");
}

#[test]
fn one_instructions_words_see_the_state_before_it() {
    let b = Fake::with_base();
    let d = df(vec![(
        from("busybox", None),
        vec![
            ins("ENV A=old", Kind::Env(vec![("A".into(), "old".into())])),
            ins(
                "ENV A=new B=$A",
                Kind::Env(vec![("A".into(), "new".into()), ("B".into(), "$A".into())]),
            ),
            ins(
                "LABEL l=${A:-x}",
                Kind::Label(vec![("l".into(), "${A:-x}".into())]),
            ),
        ],
    )]);
    let id = build(&b, &Cache::in_memory(), &opts(), &d).0.unwrap();
    let cfg = b.images.lock().unwrap()[&id].0.config.clone().unwrap();
    assert_eq!(cfg.env.unwrap(), ["PATH=/bin", "A=new", "B=old"]);
    assert_eq!(cfg.labels.unwrap()["l"], "new");
}
