//! A storybench child process whose stderr is read as it arrives, so a test waits for a
//! marker line (a stage starting) instead of sleeping a fixed time.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Watched {
    pub child: Child,
    lines: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Watched {
    /// Spawns `cmd` with stdout discarded and stderr collected.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(String::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.lines.lock().unwrap().clone()
    }

    /// Polls stderr until it contains `marker`; panics (with the stderr) on timeout or exit.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) {
        let started = Instant::now();
        loop {
            if self.stderr().contains(marker) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // The reader may still hold the last lines.
                std::thread::sleep(Duration::from_millis(100));
                if self.stderr().contains(marker) {
                    return;
                }
                panic!("exited ({status}) before `{marker}`:\n{}", self.stderr());
            }
            assert!(
                started.elapsed() < timeout,
                "no `{marker}` within {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Waits for the exit (SIGKILL after `timeout`, so a hung child fails the test instead of
    /// hanging it); returns the status, how long it took, and the whole stderr.
    pub fn wait_exit(mut self, timeout: Duration) -> (ExitStatus, Duration, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                let s = self.child.wait().unwrap();
                let err = self.stderr();
                panic!("still running after {timeout:?} (killed: {s}):\n{err}");
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        let took = started.elapsed();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status, took, self.stderr())
    }
}
