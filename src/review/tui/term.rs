//! The real terminal: raw mode, alternate screen, one key at a time; restored on exit and on
//! panic.

use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyEventKind};

use super::App;
use crate::review::ReviewBackend;

/// How often the queue reloads by itself when no key is pressed: reads the daemon flags and
/// other clerks' work show within seconds.
const IDLE_REFRESH: Duration = Duration::from_secs(2);

/// Run the UI until the clerk quits.
pub fn run(mut app: App, backend: &dyn ReviewBackend) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    app.refresh(backend);
    let result = (|| -> std::io::Result<()> {
        while !app.quit {
            terminal.draw(|f| app.render(f))?;
            if event::poll(IDLE_REFRESH)? {
                if let Event::Key(key) = event::read()?
                    && key.kind != KeyEventKind::Release
                {
                    app.on_key(key, backend);
                }
            } else if app.dialog.is_none() && !app.is_unavailable() {
                // Not while a dialog is open (the clerk is typing), nor while the screen shows
                // why there is no queue (it retries when the clerk asks: a refusal would only
                // be repeated).
                app.refresh(backend);
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}
