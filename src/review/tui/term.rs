//! The real terminal: raw mode, alternate screen, one key at a time; restored on exit and on
//! panic.

use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyEventKind};

use super::App;
use crate::review::ReviewBackend;

/// How often the queue reloads by itself when no key is pressed (other clerks' work shows).
const IDLE_REFRESH: Duration = Duration::from_secs(10);

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
            } else if app.dialog.is_none() {
                app.refresh(backend);
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}
