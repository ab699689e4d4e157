//! login and logout. The credentials go to the store in `support.rs`
//! (`config.json` as the docker CLI keeps it, in `$BERTH_CONFIG` or
//! `~/.berth/`), which pull, push, search and run read for X-Registry-Auth.

use crate::client::Client;
use crate::flags::{b, v, Spec};
use crate::http::ReqBody;
use crate::img::parse;
use crate::reference::{server_key, INDEX_SERVER};
use crate::support::{config_path, erase, load_config, save_config, store, stored, Creds};
use crate::{args_error, fail};
use anyhow::Result;
use serde_json::Value;
use std::io::{BufRead, Write};

// ---------------------------------------------------------------- login / logout

const LOGIN_FLAGS: &[Spec] = &[
    v(Some('u'), "username"),
    v(Some('p'), "password"),
    b(None, "password-stdin"),
];

fn prompt(label: &str, echo: bool) -> Result<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{label}");
    let _ = err.flush();
    let mut saved = None;
    if !echo {
        let mut t = std::mem::MaybeUninit::<libc::termios>::zeroed();
        // SAFETY: tcgetattr fills the termios of our own stdin.
        if unsafe { libc::tcgetattr(0, t.as_mut_ptr()) } == 0 {
            // SAFETY: initialised by the successful tcgetattr above.
            let old = unsafe { t.assume_init() };
            let mut quiet = old;
            quiet.c_lflag &= !libc::ECHO;
            quiet.c_lflag |= libc::ECHONL;
            // SAFETY: a valid termios for our own stdin.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
            saved = Some(old);
        }
    }
    let mut line = String::new();
    let r = std::io::stdin().lock().read_line(&mut line);
    if let Some(old) = saved {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &old) };
    }
    r?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("login", args, LOGIN_FLAGS)? else {
        return Ok(0);
    };
    if p.args.len() > 1 {
        return Err(args_error("login", "requires at most 1 argument"));
    }
    let mut user = p.get("username").unwrap_or("").trim().to_string();
    let mut password = p.get("password").map(str::to_string);
    if password.is_some() {
        if p.has("password-stdin") {
            return Err(fail(
                "conflicting options: cannot specify both --password and --password-stdin",
                1,
            ));
        }
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if p.has("password-stdin") {
        if user.is_empty() {
            return Err(fail(
                "the --password-stdin option requires --username to be set",
                1,
            ));
        }
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        password = Some(s.trim_end_matches(['\n', '\r']).to_string());
    }
    let given = p.args.first().map(String::as_str).unwrap_or("");
    let key = server_key(given);
    let server = if given.is_empty() {
        INDEX_SERVER
    } else {
        given
    };
    let mut cfg = load_config()?;
    // no flags: the stored credentials are tried first, as docker does
    if user.is_empty() && password.is_none() {
        if let Some(old) = stored(&cfg, &key) {
            eprintln!(
                "Authenticating with existing credentials... [Username: {}]\n\n Info -> To login with a different account, run 'berth logout' followed by 'berth login'\n\n",
                old.username
            );
            let body = serde_json::json!({
                "username": old.username,
                "password": old.password,
                "serveraddress": server,
                "identitytoken": old.identity_token,
            });
            let mut c = connect()?;
            match c.call(
                "POST",
                "/auth",
                ReqBody::Bytes("application/json", body.to_string().as_bytes()),
            ) {
                Ok(_) => {
                    crate::img::out("Login Succeeded\n")?;
                    return Ok(0);
                }
                Err(e) => eprintln!("Login did not succeed, error: {e}"),
            }
        }
    }
    if user.is_empty() || password.as_deref().unwrap_or("").is_empty() {
        if !crate::term::isatty(0) {
            return Err(fail(
                "Error: Cannot perform an interactive login from a non TTY device",
                1,
            ));
        }
        if user.is_empty() {
            let old = stored(&cfg, &key).map(|c| c.username).unwrap_or_default();
            let label = if old.is_empty() {
                "Username: ".to_string()
            } else {
                format!("Username ({old}): ")
            };
            user = prompt(&label, true)?.trim().to_string();
            if user.is_empty() {
                user = old;
            }
            if user.is_empty() {
                return Err(fail("Error: Non-null Username Required", 1));
            }
        }
        if password.as_deref().unwrap_or("").is_empty() {
            let pw = prompt("Password: ", false)?;
            if pw.is_empty() {
                return Err(fail("Error: Password Required", 1));
            }
            password = Some(pw);
        }
    }
    let password = password.unwrap_or_default();
    let body = serde_json::json!({
        "username": user,
        "password": password,
        "serveraddress": server,
    });
    let mut c = connect()?;
    let r = c.call(
        "POST",
        "/auth",
        ReqBody::Bytes("application/json", body.to_string().as_bytes()),
    )?;
    let v = r.json().unwrap_or(Value::Null);
    let token = v
        .get("IdentityToken")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let creds = Creds {
        username: user,
        password: if token.is_empty() {
            password
        } else {
            String::new()
        },
        identity_token: token,
    };
    let changed = store(&mut cfg, &key, &creds);
    if changed {
        save_config(&cfg).map_err(|e| fail(format!("Error saving credentials: {e}"), 1))?;
        eprintln!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            config_path().display()
        );
    }
    crate::img::out("Login Succeeded\n")?;
    Ok(0)
}

pub fn logout(args: &[String]) -> Result<i32> {
    let Some(p) = parse("logout", args, &[])? else {
        return Ok(0);
    };
    if p.args.len() > 1 {
        return Err(args_error("logout", "requires at most 1 argument"));
    }
    let key = server_key(p.args.first().map(String::as_str).unwrap_or(""));
    crate::img::out(&format!("Removing login credentials for {key}\n"))?;
    let mut cfg = load_config()?;
    if erase(&mut cfg, &key) {
        if let Err(e) = save_config(&cfg) {
            eprintln!("WARNING: could not erase credentials: {key}: {e}");
        }
    }
    Ok(0)
}
