//! Where io_uring is forbidden — as under Docker's default seccomp profile
//! — `--io auto` falls back to recvmmsg/sendmmsg, says so in the log, and
//! serves; `--io uring` refuses to start with a clear error. The test
//! forbids `io_uring_setup` with a seccomp filter of its own in the child
//! before it runs the binary.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// `io_uring_setup`'s number (the same on every 64-bit Linux arch).
const IO_URING_SETUP: u32 = 425;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// In the child, before exec: `io_uring_setup` fails with EPERM.
fn forbid_io_uring() -> std::io::Result<()> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        op(JEQ_K, 0, 3, AUDIT_ARCH),
        op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        op(JEQ_K, 0, 1, IO_URING_SETUP),
        op(RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with a filter program that outlives the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, 2, &program as *const libc::sock_fprog) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn without_io_uring(io: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_uringcast"));
    command
        .args([
            "--http-addr=127.0.0.1:0",
            "--udp-addr=127.0.0.1:0",
            "--shards=2",
        ])
        .arg(format!("--io={io}"))
        .env("URINGCAST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: forbid_io_uring only calls prctl (async-signal-safe).
    unsafe {
        command.pre_exec(forbid_io_uring);
    }
    command
}

#[test]
fn auto_falls_back_to_mmsg_and_says_why() {
    let mut child = without_io_uring("auto").spawn().expect("start");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let media = stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("media:"))
        .expect("the banner's media line");
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log);
    assert!(media.contains("io: mmsg,mmsg"), "{media}");
    assert!(log.contains("io_uring unavailable"), "{log}");
    assert!(log.contains("WARN"), "the fallback is a warning: {log}");
}

#[test]
fn uring_alone_refuses_to_start() {
    let output = without_io_uring("uring").output().expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Uring datapath"), "{stderr}");
}
