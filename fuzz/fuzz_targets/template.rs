//! The CLI's Go-template engine (crates/cli/src/tmpl.rs, with its JSON value type jv.rs and
//! the number formatting in units.rs, included by path: the CLI is a binary crate). Input:
//! the template source, optionally followed by a NUL and a JSON document to run it against
//! (else a fixed inspect-like value). Parse + execute never panic and never hang.
#![no_main]
#![allow(dead_code)]

#[path = "../../crates/cli/src/jv.rs"]
mod jv;
#[path = "../../crates/cli/src/tmpl.rs"]
mod tmpl;
#[path = "../../crates/cli/src/units.rs"]
mod units;

use libfuzzer_sys::fuzz_target;

const DATA: &str = r#"{"Id":"4f3c2b1a","Name":"/web","State":{"Status":"running","Running":true,"Pid":42,"ExitCode":0},"Config":{"Image":"busybox","Env":["A=1","B=2"],"Labels":{"b":"2","a":"1"},"Cmd":["sh","-c","echo hi"]},"NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]},"Networks":{"bridge":{"IPAddress":"172.17.0.2"}}},"Size":1234.5,"Created":1700000000,"Mounts":[],"Nil":null}"#;

fuzz_target!(|data: &[u8]| {
    let (src, json) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(src) = std::str::from_utf8(src) else {
        return;
    };
    // range loops are bounded by the engine (MAX_ITERATIONS in total), so every input ends
    let fixed = jv::J::parse(DATA.as_bytes()).expect("fixed data parses");
    let value = match json.map(jv::J::parse) {
        Some(Ok(v)) => v,
        _ => fixed,
    };
    if let Ok(t) = tmpl::Template::parse(src) {
        let _ = t.execute(&value);
        let _ = t.lenient().execute(&value);
    }
    let _ = tmpl::render_list(src, std::slice::from_ref(&value), &[("ID", "Id")]);
});
