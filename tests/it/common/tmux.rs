//! A real terminal for the tests: the `meterd review` screen in a private tmux server, driven
//! by send-keys and read with capture-pane.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server of our own (its own socket), running `command` in an 80×24 or larger
    /// window named `review`.
    pub fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("meterd-{name}-{}", std::process::id()),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let out = tmux.cmd(&["new-session", "-d", "-s", "review", "-x", &w, "-y", &h, command]);
        assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed")
    }

    pub fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "review"]).stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(self.cmd(&["send-keys", "-t", "review", k]).status.success());
        }
    }

    pub fn text(&self, text: &str) {
        assert!(self.cmd(&["send-keys", "-t", "review", "-l", text]).status.success());
    }

    /// Wait until the screen shows `what` (the UI redraws after each key).
    pub fn wait_for(&self, what: &str) -> String {
        let started = Instant::now();
        loop {
            let screen = self.capture();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "screen never showed {what:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Quits the screen with `q` and waits until it has exited.
    pub fn quit(&self) {
        self.keys(&["q"]);
        let started = Instant::now();
        while self.running() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "meterd review did not quit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn running(&self) -> bool {
        self.cmd(&["has-session", "-t", "review"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Our own server on our own socket only.
        let _ = self.cmd(&["kill-server"]);
    }
}
