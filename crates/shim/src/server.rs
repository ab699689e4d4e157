//! The shim proper: create the container, then a single-threaded poll(2) loop over the
//! socket, the container's stdio, attach/wait connections and a SIGCHLD signalfd.

use crate::args::Args;
use crate::jsonlog::{JsonLog, STDERR, STDOUT};
use crate::stdio;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An attach client further behind than this is dropped rather than stalling the loop.
const MAX_CLIENT_BUF: usize = 8 << 20;
/// Stop reading attach stdin while this much is queued for the container.
const MAX_STDIN_BUF: usize = 1 << 20;
/// After the init exits, how long to wait for output from processes that kept stdio open.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After the exit is recorded, how long to keep flushing slow attach clients.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq)]
enum State {
    Created,
    Running,
    /// init reaped, output still draining
    Draining(i32, u128),
    Exited(i32, u128),
}

#[derive(PartialEq)]
enum Kind {
    Cmd,
    /// the stream of exec number n
    Exec(usize),
    /// EXECWAIT on exec number n
    ExecWait(usize),
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Wait,
}

struct Client {
    sock: UnixStream,
    kind: Kind,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    rd_eof: bool,
    close_when_flushed: bool,
    dead: bool,
}

impl Client {
    fn send(&mut self, data: &[u8]) {
        if self.dead {
            return;
        }
        if self.out.len() + data.len() > MAX_CLIENT_BUF {
            self.dead = true;
            return;
        }
        self.out.extend_from_slice(data);
        self.flush();
    }

    fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            match self.sock.write(&self.out) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => self.dead = true,
            }
        }
        if self.out.is_empty() && self.close_when_flushed && !self.dead {
            let _ = self.sock.shutdown(std::net::Shutdown::Write);
            self.dead = true;
        }
    }

    fn finish(&mut self) {
        self.close_when_flushed = true;
        self.flush();
    }
}

struct Shim {
    args: Args,
    cg_path: String,
    /// false in the host's (or another's) PID namespace: a kill must reach every process
    /// of the cgroup, and they are ended when the init exits
    own_pidns: bool,
    listener: UnixListener,
    sigfd: OwnedFd,
    out: Option<File>,
    err: Option<File>,
    stdin: Option<File>,
    stdin_buf: Vec<u8>,
    stdin_close_pending: bool,
    master: Option<OwnedFd>,
    created: Option<berth_runtime::Created>,
    pid: i32,
    forced_code: Option<i32>,
    state: State,
    log: JsonLog,
    clients: Vec<Client>,
    drain_deadline: Option<Instant>,
    exit_deadline: Option<Instant>,
    /// frozen by PAUSE
    paused: bool,
    /// the memory cgroup recorded an OOM kill
    oom: bool,
    /// every exec started, finished ones included (for EXECWAIT)
    execs: Vec<Exec>,
    /// the container's `linux.seccomp`: every exec gets the same filter
    seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// ... compiled at the first exec
    seccomp_bpf: Option<berth_runtime::seccomp::Filters>,
}

/// A process started by EXEC and its stream.
struct Exec {
    id: String,
    pid: i32,
    tty: bool,
    out: Option<File>,
    err: Option<File>,
    stdin: Option<File>,
    stdin_buf: Vec<u8>,
    stdin_close_pending: bool,
    master: Option<OwnedFd>,
    /// reaped: (code, unix nanos), and when to stop waiting for its output
    exited: Option<(i32, u128)>,
    drain_deadline: Option<Instant>,
    /// exit recorded and output drained: EXECWAIT is answered
    done: bool,
}

impl Exec {
    fn flush_stdin(&mut self) {
        if !write_pending(&mut self.stdin, &mut self.stdin_buf) {
            return;
        }
        if self.stdin_close_pending && self.stdin_buf.is_empty() {
            // a pty has no half-close: send ^D (EOF at the start of a line) instead
            if self.tty {
                if let Some(f) = &mut self.stdin {
                    let _ = f.write(b"\x04");
                }
            }
            self.stdin = None;
        }
    }
}

/// Writes what is buffered for a process's stdin (a non-blocking pipe or pty) until it is all
/// written or the pipe is full; a process that closed its stdin drops it and the buffer.
/// False when the pipe is full (the rest waits for the next `POLLOUT`).
fn write_pending(stdin: &mut Option<File>, buf: &mut Vec<u8>) -> bool {
    while let Some(f) = stdin {
        if buf.is_empty() {
            break;
        }
        match f.write(buf) {
            Ok(n) => {
                buf.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => {
                *stdin = None;
                buf.clear();
            }
        }
    }
    true
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn write_stdout_line(line: &str) {
    let _ = crate::stdio_write(1, line.as_bytes());
}

fn sigchld_fd() -> io::Result<OwnedFd> {
    // SAFETY: building a signal set and a signalfd; SIGCHLD is blocked so it is only
    // delivered through the fd (the container's init unblocks it before exec).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn redirect_std(bundle: &std::path::Path) {
    // SAFETY: dup2 onto 0/1/2 of files we just opened.
    unsafe {
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
        }
        if let Ok(log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(bundle.join("shim.log"))
        {
            libc::dup2(log.as_raw_fd(), 2);
        }
    }
}

pub fn run(args: Args, spec: oci_spec::runtime::Spec) -> i32 {
    // SAFETY: plain process-attribute syscalls.
    unsafe {
        libc::chdir(c"/".as_ptr());
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let fail = |msg: String| -> i32 {
        write_stdout_line(&format!("ERROR {}\n", msg.replace('\n', " ")));
        redirect_std(&args.bundle);
        1
    };
    let sigfd = match sigchld_fd() {
        Ok(f) => f,
        Err(e) => return fail(format!("signalfd: {e}")),
    };
    let (side, cstdio) = match stdio::setup(&args) {
        Ok(s) => s,
        Err(e) => return fail(format!("container stdio: {e}")),
    };
    let _ = std::fs::remove_file(&args.socket);
    let listener = match UnixListener::bind(&args.socket) {
        Ok(l) => l,
        Err(e) => return fail(format!("listen on {}: {e}", args.socket.display())),
    };
    if let Err(e) = listener.set_nonblocking(true) {
        return fail(format!("socket: {e}"));
    }
    let log_file = match &args.log {
        Some(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) => {
                let _ = std::fs::remove_file(&args.socket);
                return fail(format!("open log {}: {e}", p.display()));
            }
        },
        None => None,
    };
    let cg_path = berth_runtime::cgroups_path(&args.id, &spec);
    // a PID namespace of its own (not joined by path): its init's death ends every process
    let own_pidns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
            })
        });
    let mut created = match berth_runtime::create(&args.id, &spec, cstdio) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&args.socket);
            return fail(e.to_string());
        }
    };
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    drop(spec);
    let mut side = side;
    if let Some(console) = created.take_console() {
        // the pty from inside the container replaces the one allocated here
        if let Err(e) = use_console(&args, &mut side, console) {
            let _ = std::fs::remove_file(&args.socket);
            return fail(format!("console: {e}"));
        }
    }
    let pid = created.pid();
    write_stdout_line(&format!("READY {pid}\n"));
    redirect_std(&args.bundle);

    let (args_log, max_size, max_file) = (args.log.clone(), args.log_max_size, args.log_max_file);
    let log_cri = args.log_cri;
    let mut shim = Shim {
        args,
        cg_path,
        own_pidns,
        listener,
        sigfd,
        out: Some(File::from(side.out)),
        err: side.err.map(File::from),
        stdin: side.stdin.map(File::from),
        stdin_buf: Vec::new(),
        stdin_close_pending: false,
        master: side.master,
        created: Some(created),
        pid,
        forced_code: None,
        state: State::Created,
        log: match &args_log {
            Some(p) => JsonLog::new(log_file).with_rotation(p.clone(), max_size, max_file),
            None => JsonLog::new(log_file),
        }
        .cri(log_cri)
        .with_path(args_log.clone()),
        paused: false,
        oom: false,
        execs: Vec::new(),
        seccomp,
        seccomp_bpf: None,
        clients: Vec::new(),
        drain_deadline: None,
        exit_deadline: None,
    };
    shim.run_loop();
    0
}

fn use_console(args: &Args, side: &mut stdio::ShimSide, master: OwnedFd) -> io::Result<()> {
    if args.rows > 0 || args.cols > 0 {
        stdio::set_winsize(master.as_raw_fd(), args.rows, args.cols)?;
    }
    stdio::set_nonblock(master.as_raw_fd())?;
    side.out = master.try_clone()?;
    side.stdin = if args.stdin {
        Some(master.try_clone()?)
    } else {
        None
    };
    side.master = Some(master);
    Ok(())
}

// poll tokens
const T_LISTEN: usize = usize::MAX;
const T_SIG: usize = usize::MAX - 1;
const T_OUT: usize = usize::MAX - 2;
const T_ERR: usize = usize::MAX - 3;
const T_STDIN: usize = usize::MAX - 4;
/// exec j's fds: T_EXEC + 4j + (0 out, 1 err, 2 stdin)
const T_EXEC: usize = 1 << 40;

impl Shim {
    fn run_loop(&mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut tokens: Vec<usize> = Vec::new();
        loop {
            self.clients.retain(|c| !c.dead);
            if let State::Exited(..) = self.state {
                let timed_out = self.exit_deadline.is_some_and(|d| Instant::now() >= d);
                if self.clients.is_empty() || timed_out {
                    return;
                }
            }
            fds.clear();
            tokens.clear();
            let mut add = |fd: RawFd, ev: libc::c_short, t: usize| {
                fds.push(libc::pollfd {
                    fd,
                    events: ev,
                    revents: 0,
                });
                tokens.push(t);
            };
            add(self.listener.as_raw_fd(), libc::POLLIN, T_LISTEN);
            add(self.sigfd.as_raw_fd(), libc::POLLIN, T_SIG);
            if let Some(f) = &self.out {
                add(f.as_raw_fd(), libc::POLLIN, T_OUT);
            }
            if let Some(f) = &self.err {
                add(f.as_raw_fd(), libc::POLLIN, T_ERR);
            }
            if let Some(f) = &self.stdin {
                if !self.stdin_buf.is_empty() {
                    add(f.as_raw_fd(), libc::POLLOUT, T_STDIN);
                }
            }
            for (j, e) in self.execs.iter().enumerate() {
                if let Some(f) = &e.out {
                    add(f.as_raw_fd(), libc::POLLIN, T_EXEC + 4 * j);
                }
                if let Some(f) = &e.err {
                    add(f.as_raw_fd(), libc::POLLIN, T_EXEC + 4 * j + 1);
                }
                if let Some(f) = &e.stdin {
                    if !e.stdin_buf.is_empty() {
                        add(f.as_raw_fd(), libc::POLLOUT, T_EXEC + 4 * j + 2);
                    }
                }
            }
            let stdin_room = self.stdin.is_some() && self.stdin_buf.len() < MAX_STDIN_BUF;
            for (i, c) in self.clients.iter().enumerate() {
                let read = match c.kind {
                    Kind::Cmd => true,
                    Kind::Attach { stdin, .. } => stdin && !c.rd_eof && stdin_room,
                    Kind::Exec(j) => {
                        let e = &self.execs[j];
                        e.stdin.is_some() && !c.rd_eof && e.stdin_buf.len() < MAX_STDIN_BUF
                    }
                    Kind::Wait | Kind::ExecWait(_) => false,
                };
                let mut ev = 0;
                if read {
                    ev |= libc::POLLIN;
                }
                if !c.out.is_empty() {
                    ev |= libc::POLLOUT;
                }
                add(c.sock.as_raw_fd(), ev, i);
            }
            let deadline = match self.state {
                State::Draining(..) => self.drain_deadline,
                State::Exited(..) => self.exit_deadline,
                _ => None,
            };
            let deadline = self
                .execs
                .iter()
                .filter(|e| !e.done)
                .filter_map(|e| e.drain_deadline)
                .chain(deadline)
                .min();
            let timeout = deadline.map_or(-1, |d| {
                d.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(60_000) as libc::c_int
                    + 1
            });
            // SAFETY: fds is a valid array of pollfd.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                if io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("berth-shim: poll: {}", io::Error::last_os_error());
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            // output first, so that it is captured before the exit is processed
            for (pfd, &t) in fds.iter().zip(tokens.iter()) {
                if pfd.revents == 0 {
                    continue;
                }
                match t {
                    T_OUT => self.read_output(STDOUT),
                    T_ERR => self.read_output(STDERR),
                    t if (T_EXEC..T_STDIN - 1).contains(&t) && (t - T_EXEC) % 4 < 2 => {
                        self.read_exec_output((t - T_EXEC) / 4, (t - T_EXEC) % 4)
                    }
                    _ => {}
                }
            }
            for (pfd, &t) in fds.iter().zip(tokens.iter()) {
                if pfd.revents == 0 {
                    continue;
                }
                match t {
                    T_STDIN => self.flush_stdin(),
                    T_LISTEN => self.accept(),
                    T_SIG => self.reap(),
                    T_OUT | T_ERR => {}
                    t if t >= T_EXEC => {
                        if (t - T_EXEC) % 4 == 2 {
                            self.execs[(t - T_EXEC) / 4].flush_stdin();
                        }
                    }
                    i => {
                        if pfd.revents & libc::POLLOUT != 0 {
                            self.clients[i].flush();
                        }
                        if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                            self.client_readable(i, pfd.revents);
                        }
                    }
                }
            }
            self.finish_execs();
            self.clients.retain(|c| !c.dead);
            if let State::Draining(code, nanos) = self.state {
                let done = self.out.is_none() && self.err.is_none();
                if done || self.drain_deadline.is_some_and(|d| Instant::now() >= d) {
                    self.finish(code, nanos);
                }
            }
        }
    }

    fn read_output(&mut self, stream: usize) {
        let mut buf = [0u8; 32 * 1024];
        loop {
            let f = match if stream == STDOUT {
                &mut self.out
            } else {
                &mut self.err
            } {
                Some(f) => f,
                None => return,
            };
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.deliver(stream, &buf[..n]);
                    if n < buf.len() {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break, // EIO: the pty's slave side is gone
            }
        }
        // end of stream
        if stream == STDOUT {
            self.out = None;
        } else {
            self.err = None;
        }
    }

    fn deliver(&mut self, stream: usize, data: &[u8]) {
        self.log.write(stream, data);
        let tty = self.args.tty;
        let mut frame: Vec<u8> = Vec::new();
        for c in &mut self.clients {
            let wants = match c.kind {
                Kind::Attach { stdout, stderr, .. } => {
                    if stream == STDOUT {
                        stdout
                    } else {
                        stderr
                    }
                }
                _ => false,
            };
            if !wants {
                continue;
            }
            if tty {
                c.send(data);
            } else {
                if frame.is_empty() {
                    frame.push(if stream == STDOUT { 1 } else { 2 });
                    frame.extend_from_slice(&[0, 0, 0]);
                    frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
                    frame.extend_from_slice(data);
                }
                c.send(&frame);
            }
        }
    }

    fn flush_stdin(&mut self) {
        if !write_pending(&mut self.stdin, &mut self.stdin_buf) {
            return;
        }
        if self.stdin_close_pending && self.stdin_buf.is_empty() {
            self.stdin = None;
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.clients.push(Client {
                        sock,
                        kind: Kind::Cmd,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        rd_eof: false,
                        close_when_flushed: false,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn client_readable(&mut self, i: usize, revents: libc::c_short) {
        let mut buf = [0u8; 16 * 1024];
        let reading = match self.clients[i].kind {
            Kind::Cmd => true,
            Kind::Attach { stdin, .. } => stdin && !self.clients[i].rd_eof,
            Kind::Exec(j) => self.execs[j].stdin.is_some() && !self.clients[i].rd_eof,
            Kind::Wait | Kind::ExecWait(_) => false,
        };
        if !reading {
            if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                // the peer closed both directions: nobody is left to read our output
                self.clients[i].dead = true;
            }
            return;
        }
        loop {
            let c = &mut self.clients[i];
            match c.sock.read(&mut buf) {
                Ok(0) => {
                    c.rd_eof = true;
                    break;
                }
                Ok(n) => {
                    if c.kind == Kind::Cmd {
                        c.inbuf.extend_from_slice(&buf[..n]);
                        if let Some(pos) = c.inbuf.iter().position(|&b| b == b'\n') {
                            let line = String::from_utf8_lossy(&c.inbuf[..pos]).into_owned();
                            let rest = c.inbuf.split_off(pos + 1);
                            c.inbuf.clear();
                            self.command(i, line.trim_end_matches('\r'), rest);
                            let more = match self.clients[i].kind {
                                Kind::Attach { stdin, .. } => stdin,
                                Kind::Exec(j) => self.execs[j].stdin.is_some(),
                                _ => false,
                            };
                            if !more {
                                return;
                            }
                        } else if c.inbuf.len() > 1 << 20 {
                            c.dead = true;
                            return;
                        }
                    } else if let Kind::Exec(j) = c.kind {
                        let e = &mut self.execs[j];
                        if e.stdin.is_some() && !e.stdin_close_pending {
                            e.stdin_buf.extend_from_slice(&buf[..n]);
                            e.flush_stdin();
                        }
                        if e.stdin_buf.len() >= MAX_STDIN_BUF {
                            return;
                        }
                    } else {
                        self.stdin_data(&buf[..n]);
                        if self.stdin_buf.len() >= MAX_STDIN_BUF {
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.clients[i].dead = true;
                    return;
                }
            }
        }
        // peer EOF (half-close): never a reason to drop an attach connection
        let c = &mut self.clients[i];
        match c.kind {
            Kind::Cmd => c.dead = true,
            Kind::Attach { stdin: true, .. } if self.args.stdin_once => {
                self.stdin_close_pending = true;
                self.flush_stdin();
            }
            Kind::Exec(j) => {
                let e = &mut self.execs[j];
                e.stdin_close_pending = true;
                e.flush_stdin();
            }
            _ => {}
        }
    }

    fn stdin_data(&mut self, data: &[u8]) {
        if self.stdin.is_some() && !self.stdin_close_pending {
            self.stdin_buf.extend_from_slice(data);
            self.flush_stdin();
        }
    }

    fn command(&mut self, i: usize, line: &str, rest: Vec<u8>) {
        let mut words = line.split_ascii_whitespace();
        let verb = words.next().unwrap_or("");
        let w: Vec<&str> = words.collect();
        let reply = match verb {
            "ATTACH" => {
                let flag = |k: usize| w.get(k).is_some_and(|v| *v == "1");
                let (si, so, se) = (flag(0), flag(1), flag(2));
                self.clients[i].kind = Kind::Attach {
                    stdin: si,
                    stdout: so,
                    stderr: se,
                };
                if matches!(self.state, State::Exited(..)) {
                    self.clients[i].finish();
                } else if si && !rest.is_empty() {
                    self.stdin_data(&rest);
                }
                return;
            }
            "START" => self.start(),
            "KILL" => match w.first().and_then(|s| s.parse::<i32>().ok()) {
                Some(sig) if sig > 0 && sig < 65 => self.kill(sig),
                _ => "ERROR invalid signal\n".to_string(),
            },
            "RESIZE" => {
                let rows = w.first().and_then(|s| s.parse::<u16>().ok());
                let cols = w.get(1).and_then(|s| s.parse::<u16>().ok());
                match (rows, cols, &self.master) {
                    (Some(r), Some(c), Some(m)) => match stdio::set_winsize(m.as_raw_fd(), r, c) {
                        Ok(()) => "OK\n".to_string(),
                        Err(e) => format!("ERROR resize: {e}\n"),
                    },
                    (Some(_), Some(_), None) => "OK\n".to_string(),
                    _ => "ERROR invalid size\n".to_string(),
                }
            }
            "STATE" => match self.state {
                State::Created => format!("CREATED {}\n", self.pid),
                State::Running if self.paused => format!("PAUSED {}\n", self.pid),
                State::Running => format!("RUNNING {}\n", self.pid),
                State::Draining(c, n) | State::Exited(c, n) => self.exited_line(c, n),
            },
            "PAUSE" | "RESUME" => self.pause(verb == "PAUSE"),
            "REOPENLOG" => match self.log.reopen() {
                Ok(()) => "OK\n".to_string(),
                Err(e) => format!("ERROR reopen log: {e}\n"),
            },
            "UPDATE" => {
                let json = line.split_once(' ').map_or("", |(_, j)| j);
                match serde_json::from_str::<oci_spec::runtime::LinuxResources>(json) {
                    Err(e) => format!("ERROR invalid resources: {e}\n"),
                    Ok(_) if !matches!(self.state, State::Created | State::Running) => {
                        "ERROR container is not running\n".to_string()
                    }
                    Ok(r) => match berth_runtime::update_resources(&self.cg_path, &r) {
                        Ok(()) => "OK\n".to_string(),
                        Err(e) => format!("ERROR {}\n", e.to_string().replace('\n', " ")),
                    },
                }
            }
            "EXEC" => {
                let json = line.split_once(' ').map_or("", |(_, j)| j);
                match self.exec(i, json) {
                    Ok(pid) => {
                        let c = &mut self.clients[i];
                        c.send(format!("OK {pid}\n").as_bytes());
                        if let Kind::Exec(j) = c.kind {
                            let e = &mut self.execs[j];
                            if e.stdin.is_some() && !rest.is_empty() {
                                e.stdin_buf.extend_from_slice(&rest);
                                e.flush_stdin();
                            }
                        }
                        return;
                    }
                    Err(e) => format!("ERROR {}\n", e.replace('\n', " ")),
                }
            }
            "EXECWAIT" => match self.find_exec(w.first().copied()) {
                None => "ERROR no such exec\n".to_string(),
                Some(j) if self.execs[j].done => {
                    let (c, n) = self.execs[j].exited.unwrap_or((0, 0));
                    format!("EXITED {c} {n}\n")
                }
                Some(j) => {
                    self.clients[i].kind = Kind::ExecWait(j);
                    return;
                }
            },
            "EXECRESIZE" => {
                let rows = w.get(1).and_then(|s| s.parse::<u16>().ok());
                let cols = w.get(2).and_then(|s| s.parse::<u16>().ok());
                match (self.find_exec(w.first().copied()), rows, cols) {
                    (None, ..) => "ERROR no such exec\n".to_string(),
                    (Some(j), Some(r), Some(c)) => match &self.execs[j].master {
                        Some(m) => match stdio::set_winsize(m.as_raw_fd(), r, c) {
                            Ok(()) => "OK\n".to_string(),
                            Err(e) => format!("ERROR resize: {e}\n"),
                        },
                        None => "OK\n".to_string(),
                    },
                    _ => "ERROR invalid size\n".to_string(),
                }
            }
            "WAIT" => match self.state {
                State::Exited(c, n) => self.exited_line(c, n),
                _ => {
                    self.clients[i].kind = Kind::Wait;
                    return;
                }
            },
            _ => format!("ERROR unknown command {verb:?}\n"),
        };
        let c = &mut self.clients[i];
        c.send(reply.as_bytes());
        c.finish();
    }

    fn start(&mut self) -> String {
        let Some(mut c) = self.created.take() else {
            return match self.state {
                State::Running => "ERROR container already started\n".to_string(),
                _ => "ERROR container has exited\n".to_string(),
            };
        };
        match c.start() {
            Ok(()) => {
                if self.state == State::Created {
                    self.state = State::Running;
                }
                format!("OK {}\n", self.pid)
            }
            Err(e) => {
                // the init exits by itself with 126/127; reaped via SIGCHLD
                if self.state == State::Created {
                    self.state = State::Running;
                }
                format!("ERROR {}\n", e.to_string().replace('\n', " "))
            }
        }
    }

    fn kill(&mut self, sig: i32) -> String {
        match self.state {
            State::Created => {
                // The blocked init is pid 1 of its namespace: only SIGKILL reliably ends it.
                self.forced_code = Some(128 + sig);
                self.created = None;
                // SAFETY: our own child.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                "OK\n".to_string()
            }
            State::Running => {
                if sig == libc::SIGKILL && !self.own_pidns {
                    let _ = berth_runtime::kill_all(&self.cg_path, sig);
                }
                // SAFETY: our own child (not yet reaped, so the pid cannot be reused).
                if unsafe { libc::kill(self.pid, sig) } == 0 {
                    // as docker: a paused container is thawed after SIGKILL so it can die
                    if self.paused && sig == libc::SIGKILL {
                        if let Err(e) = berth_runtime::freeze(&self.cg_path, false) {
                            eprintln!("berth-shim: thaw after kill: {e}");
                        }
                        self.paused = false;
                    }
                    "OK\n".to_string()
                } else {
                    format!("ERROR kill: {}\n", io::Error::last_os_error())
                }
            }
            _ => "ERROR container is not running\n".to_string(),
        }
    }

    fn reap(&mut self) {
        // drain the signalfd
        let mut info = [0u8; 128 * 4];
        // SAFETY: reading into a valid buffer.
        while unsafe {
            libc::read(
                self.sigfd.as_raw_fd(),
                info.as_mut_ptr() as *mut libc::c_void,
                info.len(),
            )
        } > 0
        {}
        loop {
            let mut st = 0;
            // SAFETY: plain waitpid.
            let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == self.pid && matches!(self.state, State::Created | State::Running) {
                let code = if libc::WIFEXITED(st) {
                    libc::WEXITSTATUS(st)
                } else {
                    128 + libc::WTERMSIG(st)
                };
                let code = self.forced_code.unwrap_or(code);
                self.state = State::Draining(code, now_nanos());
                self.created = None;
                if !self.own_pidns {
                    // as runc: the init's end is the container's end; what it left running
                    // goes too (and lets go of the output pipes)
                    let _ = berth_runtime::kill_all(&self.cg_path, libc::SIGKILL);
                }
                self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                self.paused = false;
            } else if let Some(e) = self
                .execs
                .iter_mut()
                .find(|e| e.pid == pid && e.exited.is_none())
            {
                let code = if libc::WIFEXITED(st) {
                    libc::WEXITSTATUS(st)
                } else {
                    128 + libc::WTERMSIG(st)
                };
                e.exited = Some((code, now_nanos()));
                e.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
            }
        }
    }

    fn exited_line(&self, code: i32, nanos: u128) -> String {
        let oom = if self.oom { " oom" } else { "" };
        format!("EXITED {code} {nanos}{oom}\n")
    }

    fn pause(&mut self, freeze: bool) -> String {
        if !matches!(self.state, State::Running) {
            return "ERROR container is not running\n".to_string();
        }
        match berth_runtime::freeze(&self.cg_path, freeze) {
            Ok(()) => {
                self.paused = freeze;
                "OK\n".to_string()
            }
            Err(e) => format!("ERROR {}\n", e.to_string().replace('\n', " ")),
        }
    }

    fn find_exec(&self, id: Option<&str>) -> Option<usize> {
        let id = id?;
        self.execs.iter().rposition(|e| e.id == id)
    }

    /// EXEC: starts the process; on success client `i` becomes its stream.
    fn exec(&mut self, i: usize, json: &str) -> Result<i32, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("invalid exec request: {e}"))?;
        let id = v["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("invalid exec request: no id")?
            .to_string();
        let process: oci_spec::runtime::Process = serde_json::from_value(v["process"].clone())
            .map_err(|e| format!("invalid exec request: {e}"))?;
        let stdin = v["stdin"].as_bool().unwrap_or(false);
        let rows = v["rows"].as_u64().unwrap_or(0).min(u16::MAX as u64) as u16;
        let cols = v["cols"].as_u64().unwrap_or(0).min(u16::MAX as u64) as u16;
        if self.state != State::Running || self.created.is_some() {
            return Err("container is not running".into());
        }
        if self.paused {
            return Err("cannot exec in a paused container".into());
        }
        let tty = process.terminal().unwrap_or(false);
        let (mut side, cstdio) =
            stdio::setup_with(tty, stdin, rows, cols).map_err(|e| format!("exec stdio: {e}"))?;
        if let (Some(profile), None) = (&self.seccomp, &self.seccomp_bpf) {
            self.seccomp_bpf =
                Some(berth_runtime::seccomp::compile(profile).map_err(|e| e.to_string())?);
        }
        let mut p = berth_runtime::exec(
            self.pid,
            &self.cg_path,
            &process,
            self.seccomp_bpf.as_ref(),
            cstdio,
        )
        .map_err(|e| e.to_string())?;
        if let Some(m) = p.take_console() {
            if rows > 0 || cols > 0 {
                let _ = stdio::set_winsize(m.as_raw_fd(), rows, cols);
            }
            stdio::set_nonblock(m.as_raw_fd()).map_err(|e| format!("console: {e}"))?;
            side.out = m.try_clone().map_err(|e| format!("console: {e}"))?;
            side.stdin = if stdin {
                Some(m.try_clone().map_err(|e| format!("console: {e}"))?)
            } else {
                None
            };
            side.master = Some(m);
        }
        let pid = p.pid();
        self.execs.push(Exec {
            id,
            pid,
            tty,
            out: Some(File::from(side.out)),
            err: side.err.map(File::from),
            stdin: side.stdin.map(File::from),
            stdin_buf: Vec::new(),
            stdin_close_pending: false,
            master: side.master,
            exited: None,
            drain_deadline: None,
            done: false,
        });
        self.clients[i].kind = Kind::Exec(self.execs.len() - 1);
        Ok(pid)
    }

    fn read_exec_output(&mut self, j: usize, stream: usize) {
        let mut buf = [0u8; 32 * 1024];
        loop {
            let e = &mut self.execs[j];
            let f = match if stream == STDOUT {
                &mut e.out
            } else {
                &mut e.err
            } {
                Some(f) => f,
                None => return,
            };
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let tty = e.tty;
                    let data = &buf[..n];
                    let mut frame = Vec::new();
                    if !tty {
                        frame.push(if stream == STDOUT { 1 } else { 2 });
                        frame.extend_from_slice(&[0, 0, 0]);
                        frame.extend_from_slice(&(n as u32).to_be_bytes());
                        frame.extend_from_slice(data);
                    }
                    for c in &mut self.clients {
                        if c.kind == Kind::Exec(j) {
                            c.send(if tty { data } else { &frame });
                        }
                    }
                    if n < buf.len() {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        let e = &mut self.execs[j];
        if stream == STDOUT {
            e.out = None;
        } else {
            e.err = None;
        }
    }

    /// Execs that have exited and whose output is drained (or timed out): close their
    /// streams and answer EXECWAIT.
    fn finish_execs(&mut self) {
        let now = Instant::now();
        for j in 0..self.execs.len() {
            let e = &self.execs[j];
            let Some((code, nanos)) = e.exited else {
                continue;
            };
            if e.done {
                continue;
            }
            let drained = e.out.is_none() && e.err.is_none();
            if !drained && e.drain_deadline.is_none_or(|d| now < d) {
                continue;
            }
            self.read_exec_output(j, STDOUT);
            self.read_exec_output(j, STDERR);
            let e = &mut self.execs[j];
            e.out = None;
            e.err = None;
            e.stdin = None;
            e.master = None;
            e.done = true;
            let line = format!("EXITED {code} {nanos}\n");
            for c in &mut self.clients {
                if c.kind == Kind::ExecWait(j) {
                    c.send(line.as_bytes());
                    c.finish();
                } else if c.kind == Kind::Exec(j) {
                    c.finish();
                }
            }
        }
    }

    fn finish(&mut self, code: i32, nanos: u128) {
        // whatever is still readable (e.g. after the drain deadline)
        self.read_output(STDOUT);
        self.read_output(STDERR);
        self.out = None;
        self.err = None;
        self.stdin = None;
        self.log.finish();
        self.oom = berth_runtime::stats::oom_kills(&self.cg_path) > 0;
        if !self.own_pidns {
            // anything started since the init's end
            let _ = berth_runtime::kill_all(&self.cg_path, libc::SIGKILL);
        }
        let oom = if self.oom { " oom" } else { "" };
        if let Err(e) = write_exit_file(&self.args.exit_file, code, nanos, oom) {
            eprintln!("berth-shim: exit file: {e}");
        }
        // the socket path and the cgroup go before any waiter hears of the exit: the daemon
        // may start the container again at once, and the new shim binds the same path and
        // makes the same cgroup (clients already connected keep their connections)
        let _ = std::fs::remove_file(&self.args.socket);
        if let Err(e) = berth_runtime::remove_cgroups(&self.cg_path) {
            eprintln!("berth-shim: {e}");
        }
        self.state = State::Exited(code, nanos);
        let line = self.exited_line(code, nanos);
        for c in &mut self.clients {
            match c.kind {
                Kind::Wait => {
                    c.send(line.as_bytes());
                    c.finish();
                }
                Kind::Attach { .. } => c.finish(),
                _ => {}
            }
        }
        self.exit_deadline = Some(Instant::now() + FLUSH_TIMEOUT);
    }
}

fn write_exit_file(path: &std::path::Path, code: i32, nanos: u128, oom: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{code} {nanos}{oom}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
