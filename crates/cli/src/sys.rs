//! `system df` and `system prune`.

use crate::client::Client;
use crate::cmds::{checked_filters, filters_query, ps_item, PS_HEADERS};
use crate::flags::{b, v};
use crate::img::{confirm, html_escape_json, image_items, now, out, reclaimed, render, space};
use crate::jv::J;
use crate::units::{ago, go_g_size, human_size};
use crate::vol::{parse_with, volume_item, FORMAT_HELP, VOLUME_HEADERS};
use crate::{args_error, fail, tmpl};
use anyhow::Result;
use serde_json::Value;

fn help(cmd: &str) -> String {
    match cmd {
        "system df" => format!(
            "Usage:  berth system df [OPTIONS]

Show berth disk usage

Options:
{FORMAT_HELP}  -v, --verbose         Show detailed information on space usage
"
        ),
        "system prune" => "Usage:  berth system prune [OPTIONS]

Remove unused data

Options:
  -a, --all             Remove all unused images not just dangling ones
      --filter filter   Provide filter values (e.g. \"label=<key>=<value>\")
  -f, --force           Do not prompt for confirmation
      --volumes         Prune anonymous volumes
"
        .into(),
        _ => crate::commands::group("system")
            .map(crate::commands::group_help)
            .unwrap_or_default(),
    }
}

// ---------------------------------------------------------------- df

pub const DF_HEADERS: &[(&str, &str)] = &[
    ("Active", "ACTIVE"),
    ("Reclaimable", "RECLAIMABLE"),
    ("Size", "SIZE"),
    ("TotalCount", "TOTAL"),
    ("Type", "TYPE"),
];

const DF_DEFAULT: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const DF_IMAGES: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const DF_CONTAINERS: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const DF_VOLUMES: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const DF_CACHE: &str = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

pub const CACHE_HEADERS: &[(&str, &str)] = &[
    ("CacheType", "CACHE TYPE"),
    ("CreatedSince", "CREATED"),
    ("Description", "DESCRIPTION"),
    ("ID", "CACHE ID"),
    ("LastUsedSince", "LAST USED"),
    ("Parent", "PARENT"),
    ("Shared", "SHARED"),
    ("Size", "SIZE"),
    ("UsageCount", "USAGE"),
];

fn arr<'a>(v: &'a Value, k: &str) -> Vec<&'a Value> {
    v.get(k)
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
        .collect()
}

fn int(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(|x| x.as_i64()).unwrap_or(0)
}

/// "X (P%)" when there is a total, as docker's reclaimable columns.
fn with_pct(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            go_g_size(reclaimable as f64, 4),
            reclaimable * 100 / total
        )
    } else {
        go_g_size(reclaimable as f64, 4)
    }
}

fn df_row(typ: &str, total: usize, active: usize, size: String, recl: String) -> J {
    J::Obj(vec![
        ("Active".into(), J::str(active.to_string())),
        ("Reclaimable".into(), J::str(recl)),
        ("Size".into(), J::str(size)),
        ("TotalCount".into(), J::str(total.to_string())),
        ("Type".into(), J::str(typ)),
    ])
}

/// The four summary rows of `system df`.
pub fn df_rows(df: &Value) -> Vec<J> {
    let images = arr(df, "Images");
    let layers = int(df, "LayersSize");
    let used: i64 = images
        .iter()
        .filter(|i| int(i, "Containers") != 0)
        .filter(|i| int(i, "Size") != -1 && int(i, "SharedSize") != -1)
        .map(|i| int(i, "Size") - int(i, "SharedSize"))
        .sum();
    let img = df_row(
        "Images",
        images.len(),
        images.iter().filter(|i| int(i, "Containers") > 0).count(),
        go_g_size(layers as f64, 4),
        with_pct(layers - used, layers),
    );
    let ctrs = arr(df, "Containers");
    let active = |c: &Value| {
        let s = c.get("State").and_then(|x| x.as_str()).unwrap_or("");
        s.contains("running") || s.contains("paused") || s.contains("restarting")
    };
    let csize: i64 = ctrs.iter().map(|c| int(c, "SizeRw")).sum();
    let crecl: i64 = ctrs
        .iter()
        .filter(|c| !active(c))
        .map(|c| int(c, "SizeRw"))
        .sum();
    let ctr = df_row(
        "Containers",
        ctrs.len(),
        ctrs.iter().filter(|c| active(c)).count(),
        go_g_size(csize as f64, 4),
        with_pct(crecl, csize),
    );
    let vols = arr(df, "Volumes");
    let usage = |v: &Value, k: &str| v.get("UsageData").map(|u| int(u, k)).unwrap_or(0);
    let vsize: i64 = vols
        .iter()
        .map(|v| usage(v, "Size"))
        .filter(|s| *s != -1)
        .sum();
    let vrecl: i64 = vols
        .iter()
        .filter(|v| usage(v, "RefCount") == 0)
        .map(|v| usage(v, "Size"))
        .filter(|s| *s != -1)
        .sum();
    let vol = df_row(
        "Local Volumes",
        vols.len(),
        vols.iter().filter(|v| usage(v, "RefCount") > 0).count(),
        go_g_size(vsize as f64, 4),
        with_pct(vrecl, vsize),
    );
    let cache = arr(df, "BuildCache");
    let bsize = int(df, "BuilderSize");
    let flag = |c: &Value, k: &str| c.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    let in_use: i64 = cache
        .iter()
        .filter(|c| flag(c, "InUse") && !flag(c, "Shared"))
        .map(|c| int(c, "Size"))
        .sum();
    let bc = df_row(
        "Build Cache",
        cache.len(),
        cache.iter().filter(|c| flag(c, "InUse")).count(),
        go_g_size(bsize as f64, 4),
        go_g_size((bsize - in_use) as f64, 4),
    );
    vec![img, ctr, vol, bc]
}

/// Seconds since the epoch of an RFC 3339 time (0 if unreadable).
fn unix_of(t: &str) -> i64 {
    crate::units::get_timestamp(t, 0.0)
        .ok()
        .and_then(|s| s.split('.').next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

fn cache_item(c: &Value, now: f64, trunc: bool) -> J {
    let s = |k: &str| c.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut id = s("ID");
    if trunc {
        id = id.chars().take(12).collect();
    }
    if c.get("InUse").and_then(|x| x.as_bool()).unwrap_or(false) {
        id.push('*');
    }
    let last = s("LastUsedAt");
    J::Obj(vec![
        ("CacheType".into(), J::str(s("Type"))),
        (
            "CreatedSince".into(),
            J::str(ago(unix_of(&s("CreatedAt")), now)),
        ),
        ("Description".into(), J::str(s("Description"))),
        ("ID".into(), J::str(id)),
        (
            "LastUsedSince".into(),
            J::str(if last.is_empty() {
                String::new()
            } else {
                ago(unix_of(&last), now)
            }),
        ),
        ("Parent".into(), J::str(s("Parent"))),
        (
            "Shared".into(),
            J::str(
                c.get("Shared")
                    .and_then(|x| x.as_bool())
                    .unwrap_or(false)
                    .to_string(),
            ),
        ),
        ("Size".into(), J::str(human_size(int(c, "Size") as f64))),
        (
            "UsageCount".into(),
            J::str(int(c, "UsageCount").to_string()),
        ),
    ])
}

/// The per-object rows of `system df -v`: images (first tag only),
/// containers (no virtual size), volumes, build cache.
pub fn df_verbose_items(df: &Value, now: f64, trunc: bool) -> [Vec<J>; 4] {
    let imgs: Vec<Value> = arr(df, "Images")
        .into_iter()
        .map(|i| {
            let mut i = i.clone();
            let first = i
                .get("RepoTags")
                .and_then(|t| t.as_array())
                .and_then(|t| t.first().cloned())
                .filter(|t| t.as_str() != Some("<none>:<none>"));
            i["RepoTags"] = Value::Array(first.into_iter().collect());
            i["RepoDigests"] = Value::Array(vec![]);
            i
        })
        .collect();
    let mut images = image_items(&Value::Array(imgs), now, trunc, false);
    // docker's disk usage rows carry no digest
    for i in images.iter_mut() {
        if let J::Obj(m) = i {
            for (k, x) in m.iter_mut() {
                if k == "Digest" {
                    *x = J::str("");
                }
            }
        }
    }
    let containers = arr(df, "Containers")
        .into_iter()
        .map(|c| {
            let mut c = c.clone();
            c["SizeRootFs"] = Value::from(0);
            ps_item(&c, now, trunc)
        })
        .collect();
    let volumes = arr(df, "Volumes").into_iter().map(volume_item).collect();
    let cache = arr(df, "BuildCache")
        .into_iter()
        .map(|c| cache_item(c, now, trunc))
        .collect();
    [images, containers, volumes, cache]
}

/// `system df -v` as docker lays it out: one table per section.
pub fn df_verbose_table(df: &Value, now: f64) -> Result<String> {
    let [images, containers, volumes, cache] = df_verbose_items(df, now, true);
    let mut t = String::from("Images space usage:\n\n");
    t.push_str(&render(
        DF_IMAGES,
        &images,
        crate::img::IMAGES_HEADERS,
        "*formatter.imageContext",
    )?);
    t.push_str("\nContainers space usage:\n\n");
    t.push_str(&render(
        DF_CONTAINERS,
        &containers,
        PS_HEADERS,
        "*formatter.ContainerContext",
    )?);
    t.push_str("\nLocal Volumes space usage:\n\n");
    t.push_str(&render(
        DF_VOLUMES,
        &volumes,
        VOLUME_HEADERS,
        "*formatter.volumeContext",
    )?);
    t.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        go_g_size(int(df, "BuilderSize") as f64, 4)
    ));
    t.push_str(&render(
        DF_CACHE,
        &cache,
        CACHE_HEADERS,
        "*formatter.buildCacheContext",
    )?);
    Ok(t)
}

pub fn df(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "system df";
    let specs = [v(None, "format"), b(Some('v'), "verbose")];
    let Some(p) = parse_with(cmd, args, &specs, help)? else {
        return Ok(0);
    };
    if !p.args.is_empty() {
        return Err(args_error(cmd, "accepts no arguments"));
    }
    let format = match p.get("format").unwrap_or("") {
        "" | "table" => "table".to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let tp = format.strip_prefix("table").unwrap_or(&format);
    let t = tmpl::Template::parse(tp.trim_start())
        .map_err(|e| fail(format!("template parsing error: {e}"), 1))?;
    let mut c = connect()?;
    let dfv = c.get_json("/system/df")?;
    let text = if p.has("verbose") && format == "table" {
        df_verbose_table(&dfv, now())?
    } else if p.has("verbose") {
        let [i, c, v, b] = df_verbose_items(&dfv, now(), format.starts_with("table"));
        let all = J::Obj(vec![
            ("Images".into(), J::Arr(i)),
            ("Containers".into(), J::Arr(c)),
            ("Volumes".into(), J::Arr(v)),
            ("BuildCache".into(), J::Arr(b)),
        ]);
        let line = t
            .execute(&all)
            .map_err(|e| fail(format!("template: {e}"), 1))?;
        html_escape_json(&line)
    } else {
        let format = if format == "table" {
            DF_DEFAULT.to_string()
        } else {
            format
        };
        render(
            &format,
            &df_rows(&dfv),
            DF_HEADERS,
            "*formatter.diskUsageImagesContext",
        )?
    };
    out(&text)?;
    Ok(0)
}

// ---------------------------------------------------------------- prune

/// docker's confirmation text for `system prune` (before the question).
pub fn prune_warning(all: bool, volumes: bool, filters: &[String]) -> String {
    let mut w = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if volumes {
        w.push("all anonymous volumes not used by at least one container");
    }
    w.push(if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    w.push(if all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut t = String::from("WARNING! This will remove:\n");
    for x in w {
        t.push_str(&format!("  - {x}\n"));
    }
    if !filters.is_empty() {
        let mut f = filters.to_vec();
        f.sort();
        t.push_str("\n  Items to be pruned will be filtered with:\n");
        for x in f {
            t.push_str(&format!("  - {x}\n"));
        }
    }
    t
}

/// Calls build cache prune; returns the "Deleted build cache objects:"
/// text and the bytes reclaimed.
pub fn prune_build_cache(c: &mut Client, all: bool, fq: &str) -> Result<(String, u64)> {
    let mut q = Vec::new();
    if all {
        q.push("all=1".to_string());
    }
    // docker sends `filters=` even when there are none
    q.push(if fq.is_empty() {
        "filters=".to_string()
    } else {
        fq.to_string()
    });
    let path = format!("/build/prune?{}", q.join("&"));
    let v = c.post(&path)?.json()?;
    Ok((
        crate::img::deleted_list(&v, "CachesDeleted", "build cache objects"),
        space(&v),
    ))
}

pub fn prune(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "system prune";
    let specs = [
        b(Some('a'), "all"),
        v(None, "filter"),
        b(Some('f'), "force"),
        b(None, "volumes"),
    ];
    let Some(p) = parse_with(cmd, args, &specs, help)? else {
        return Ok(0);
    };
    if !p.args.is_empty() {
        return Err(args_error(cmd, "accepts no arguments"));
    }
    let fq = checked_filters(cmd, &p, "--filter")?;
    let filters = p.all("filter");
    let (all, volumes) = (p.has("all"), p.has("volumes"));
    if volumes && filters.iter().any(|f| f.starts_with("until=")) {
        return Err(fail(
            "ERROR: The \"until\" filter is not supported with \"--volumes\"",
            1,
        ));
    }
    if !p.has("force") && !confirm(&prune_warning(all, volumes, &filters))? {
        return Ok(0);
    }
    let mut c = connect()?;
    let mut total = 0u64;
    let (t, n) = crate::ctr::prune_containers(&mut c, &fq)?;
    out(&t)?;
    total += n;
    out(&crate::net::prune_networks(&mut c, &fq)?)?;
    if volumes {
        let (t, n) = crate::vol::prune_volumes(&mut c, &fq)?;
        out(&t)?;
        total += n;
    }
    let (t, n) = crate::img::prune_images(&mut c, all, &filters)?;
    out(&t)?;
    total += n;
    let (t, n) = prune_build_cache(&mut c, all, &filters_query(&filters)?)?;
    out(&t)?;
    total += n;
    out(&reclaimed(total))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_summary() {
        let df: Value = serde_json::from_str(
            r#"{"LayersSize":1983000,"Images":[{"Containers":2,"Size":1983000,"SharedSize":0,"RepoTags":["busybox:latest"],"Id":"sha256:d72df08b3844aaaa","Created":0}],
                "Containers":[{"Id":"f10ed28894c0aaaa","State":"created","SizeRw":6},{"Id":"269340071773aaaa","State":"running","SizeRw":32}],
                "Volumes":[],"BuildCache":null,"BuilderSize":0}"#,
        )
        .unwrap();
        assert_eq!(
            render(DF_DEFAULT, &df_rows(&df), DF_HEADERS, "").unwrap(),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE
Images          1         1         1.983MB   0B (0%)
Containers      2         1         38B       6B (15%)
Local Volumes   0         0         0B        0B
Build Cache     0         0         0B        0B
"
        );
        let t = df_verbose_table(&df, 3.0 * 365.0 * 86400.0).unwrap();
        assert!(t.starts_with("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID       CREATED       SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\nbusybox      latest    d72df08b3844"), "{t}");
        assert!(t.ends_with("\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n"), "{t}");
    }

    #[test]
    fn prune_warnings() {
        assert_eq!(
            prune_warning(false, true, &[]),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all dangling images\n  - unused build cache\n"
        );
        assert!(prune_warning(true, false, &["until=1h".into(), "label=a".into()]).ends_with(
            "  - all build cache\n\n  Items to be pruned will be filtered with:\n  - label=a\n  - until=1h\n"
        ));
    }
}
