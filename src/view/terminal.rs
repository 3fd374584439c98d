//! The live view: owns the terminal while the sale runs.
//!
//! It draws on the alternate screen, so nothing of the shell is overwritten,
//! and on `finish` prints the final frame onto the normal screen, where it
//! stays in the scrollback with the cursor below it.
//!
//! Nothing here starts a thread: the engine forks buyer processes, and a
//! fork copies only the calling thread. For the same reason the terminal is
//! restored only by the process that took it over: a forked buyer carries a
//! copy of the `LiveView` and of the panic hook, and must not switch the
//! shared terminal back to cooked mode under the parent's feet.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use crossterm::cursor::{Hide, Show};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::{PrintStyledContent, StyledContent};
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{execute, queue};
use ratatui::Terminal;
use ratatui::backend::{CrosstermBackend, IntoCrossterm};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;

use super::render;
use super::state::{Snapshot, ViewCommand};

/// Events handled per `poll_commands` call, so a flood of input cannot keep
/// the sale from being redrawn.
const MAX_EVENTS_PER_POLL: usize = 256;

/// Pid of the process whose live view owns the terminal; 0 when none does.
static OWNER_PID: AtomicU32 = AtomicU32::new(0);
/// Where the owning live view draws (a `Target` as `u8`).
static OWNER_TARGET: AtomicU8 = AtomicU8::new(0);
/// Whether `install_panic_hook` already ran.
static HOOK_INSTALLED: AtomicBool = AtomicBool::new(false);

/// The stream a view writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Target {
    fn to_u8(self) -> u8 {
        match self {
            Target::Stdout => 0,
            Target::Stderr => 1,
        }
    }

    fn from_u8(n: u8) -> Target {
        if n == 1 {
            Target::Stderr
        } else {
            Target::Stdout
        }
    }
}

/// Standard output or error, chosen at run time.
enum Out {
    Stdout(io::Stdout),
    Stderr(io::Stderr),
}

impl Out {
    fn new(target: Target) -> Out {
        match target {
            Target::Stdout => Out::Stdout(io::stdout()),
            Target::Stderr => Out::Stderr(io::stderr()),
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Stdout(w) => w.write(buf),
            Out::Stderr(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Stdout(w) => w.flush(),
            Out::Stderr(w) => w.flush(),
        }
    }
}

/// The full-screen live view of a running sale.
pub(crate) struct LiveView {
    terminal: Terminal<CrosstermBackend<Out>>,
    /// Whether the last frame drawn was step mode's: it changes what some
    /// keys mean (space steps instead of pausing).
    step_mode: bool,
    /// Whether frames keep their colours (`--color`, `NO_COLOR`).
    colour: bool,
}

impl LiveView {
    /// Takes over the terminal on `target`: raw mode, alternate screen,
    /// hidden cursor. Fails if a live view already owns it. Without
    /// `colour`, frames keep only bold and reverse video.
    pub(crate) fn start(target: Target, colour: bool) -> io::Result<LiveView> {
        let pid = std::process::id();
        if OWNER_PID
            .compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::other("a live view already owns the terminal"));
        }
        OWNER_TARGET.store(target.to_u8(), Ordering::SeqCst);
        // crossterm reads NO_COLOR itself; the decision is ours
        // (`--color always` wins over NO_COLOR).
        crossterm::style::Colored::set_ansi_color_disabled(!colour);
        if let Err(e) = enable_raw_mode() {
            // Nothing changed yet, so there is nothing to restore.
            OWNER_PID.store(0, Ordering::SeqCst);
            return Err(e);
        }
        Self::take_over(target, colour).inspect_err(|_| {
            let _ = release();
        })
    }

    fn take_over(target: Target, colour: bool) -> io::Result<LiveView> {
        let mut out = Out::new(target);
        // Cleared here rather than with `Terminal::clear`, which asks the
        // terminal for the cursor position and can wait seconds for an answer.
        execute!(out, EnterAlternateScreen, Hide, Clear(ClearType::All))?;
        let terminal = Terminal::new(CrosstermBackend::new(out))?;
        Ok(LiveView {
            terminal,
            step_mode: false,
            colour,
        })
    }

    /// Redraws the screen with `snap`, at the terminal's current size.
    pub(crate) fn draw(&mut self, snap: &Snapshot) -> io::Result<()> {
        self.step_mode = snap.stepper.is_some();
        let colour = self.colour;
        self.terminal.draw(|frame| {
            render::draw(frame, snap);
            if !colour {
                without_colour(frame.buffer_mut());
            }
        })?;
        Ok(())
    }

    /// The commands typed since the last call; never blocks.
    pub(crate) fn poll_commands(&mut self) -> io::Result<Vec<ViewCommand>> {
        let mut commands = Vec::new();
        for _ in 0..MAX_EVENTS_PER_POLL {
            if !event::poll(Duration::ZERO)? {
                break;
            }
            match event::read()? {
                Event::Key(key) => commands.extend(command_for(key, self.step_mode)),
                // Clears and resizes the buffers so the next draw repaints
                // the whole screen at the new size.
                Event::Resize(..) => self.terminal.autoresize()?,
                _ => {}
            }
        }
        Ok(commands)
    }

    /// Gives the terminal back for a while (Ctrl-Z): the normal screen and
    /// cooked mode, as the shell expects them.
    pub(crate) fn suspend(&mut self) -> io::Result<()> {
        let out = self.terminal.backend_mut();
        execute!(out, LeaveAlternateScreen, Show)?;
        disable_raw_mode()
    }

    /// Takes the terminal again after `fg`, and repaints all of it: what
    /// the shell printed meanwhile must not stay on the screen.
    pub(crate) fn resume(&mut self) -> io::Result<()> {
        enable_raw_mode()?;
        let out = self.terminal.backend_mut();
        execute!(out, EnterAlternateScreen, Hide, Clear(ClearType::All))?;
        // Not `Terminal::clear`, which asks the terminal for the cursor
        // position and can wait seconds for an answer, with every buyer
        // still parked: a resize to the current size clears the screen and
        // empties ratatui's buffers, so the next draw repaints everything.
        let area = self.terminal.size()?;
        self.terminal.resize(area.into())
    }

    /// Gives the terminal back and prints `last` on the normal screen, so the
    /// final state stays in the scrollback with the cursor below it.
    pub(crate) fn finish(mut self, last: &Snapshot) -> io::Result<()> {
        let size = self.terminal.size()?;
        let height = render::preferred_height(last, size.width).min(size.height);
        let mut buf = Buffer::empty(Rect::new(0, 0, size.width, height));
        render::render(last, buf.area, &mut buf);
        if !self.colour {
            without_colour(&mut buf);
        }
        self.terminal.backend_mut().flush()?;
        release()?;
        let out = self.terminal.backend_mut();
        print_buffer(out, &buf)?;
        out.flush()
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        // A forked buyer's copy must not even flush: that would repeat
        // whatever the parent had buffered at the fork.
        if OWNER_PID.load(Ordering::SeqCst) == std::process::id() {
            let _ = self.terminal.backend_mut().flush();
            let _ = release();
        }
    }
}

/// Restores the terminal before the previous panic hook prints, so the
/// message lands on a usable screen. Safe to call more than once.
pub(crate) fn install_panic_hook() {
    // Once is enough: every view start calling this must not stack hooks.
    if HOOK_INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = release();
        previous(info);
    }));
}

/// Restores the terminal if this process owns it; later calls do nothing.
fn release() -> io::Result<()> {
    let pid = std::process::id();
    if OWNER_PID
        .compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Ok(());
    }
    let mut out = Out::new(Target::from_u8(OWNER_TARGET.load(Ordering::SeqCst)));
    // Raw mode goes even if the screen commands fail: a raw terminal is the
    // worse thing to be left with.
    let screen = execute!(out, LeaveAlternateScreen, Show);
    let raw = disable_raw_mode();
    screen.and(raw)
}

/// Maps a key to a command: q, Esc or Ctrl-C quit (raw mode delivers Ctrl-C
/// as a key), + or = slow down, - or _ speed up, p pauses. Space pauses
/// too, except in step mode, where it steps the selected buyer like Enter;
/// step mode also reads the digits 1–9 (step that buyer), the arrows, Tab
/// and BackTab (select), a (run free), u (undo), r (restart), s (save).
fn command_for(key: KeyEvent, step_mode: bool) -> Option<ViewCommand> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let control = key.modifiers.contains(KeyModifiers::CONTROL);
    let common = match key.code {
        KeyCode::Char('c') if control => Some(ViewCommand::Quit),
        KeyCode::Char('z') if control => Some(ViewCommand::Suspend),
        KeyCode::Char('q' | 'Q') | KeyCode::Esc => Some(ViewCommand::Quit),
        KeyCode::Char('p' | 'P') => Some(ViewCommand::TogglePause),
        KeyCode::Char('+' | '=') => Some(ViewCommand::Slower),
        KeyCode::Char('-' | '_') => Some(ViewCommand::Faster),
        _ => None,
    };
    if common.is_some() || control {
        return common;
    }
    if !step_mode {
        return match key.code {
            KeyCode::Char(' ') => Some(ViewCommand::TogglePause),
            _ => None,
        };
    }
    match key.code {
        KeyCode::Char(d @ '1'..='9') => Some(ViewCommand::StepBuyer(d as usize - '1' as usize)),
        KeyCode::Enter | KeyCode::Char(' ') => Some(ViewCommand::StepSelected),
        KeyCode::Down | KeyCode::Tab | KeyCode::Right => Some(ViewCommand::SelectNext),
        KeyCode::Up | KeyCode::BackTab | KeyCode::Left => Some(ViewCommand::SelectPrevious),
        KeyCode::Char('a' | 'A') => Some(ViewCommand::RunFree),
        KeyCode::Char('u' | 'U') => Some(ViewCommand::Undo),
        KeyCode::Char('r' | 'R') => Some(ViewCommand::Restart),
        KeyCode::Char('s' | 'S') => Some(ViewCommand::Save),
        _ => None,
    }
}

/// Writes `buf` as styled text lines, trailing blanks dropped. Uses "\r\n"
/// so it reads right whether or not the terminal translates newlines.
fn print_buffer(out: &mut impl Write, buf: &Buffer) -> io::Result<()> {
    let area = buf.area;
    for y in area.top()..area.bottom() {
        let row: Vec<_> = (area.left()..area.right()).map(|x| &buf[(x, y)]).collect();
        let end = row
            .iter()
            .rposition(|c| c.symbol() != " " || c.bg != Color::Reset || is_reversed(c.modifier))
            .map_or(0, |i| i + 1);
        let mut run = String::new();
        let mut run_style = Style::new();
        // A wide character covers the cells after it; those are not printed.
        let mut covered = 0;
        for cell in &row[..end] {
            if covered > 0 {
                covered -= 1;
                continue;
            }
            let style = cell.style();
            if style != run_style && !run.is_empty() {
                print_run(out, run_style, &std::mem::take(&mut run))?;
            }
            run_style = style;
            run.push_str(cell.symbol());
            covered = Span::raw(cell.symbol()).width().saturating_sub(1);
        }
        if !run.is_empty() {
            print_run(out, run_style, &run)?;
        }
        queue!(out, crossterm::style::Print("\r\n"))?;
    }
    Ok(())
}

/// Drops every colour from `buf`, keeping bold and reverse video: the one
/// place `--color never` and `NO_COLOR` take effect, so the renderer never
/// needs to know.
fn without_colour(buf: &mut Buffer) {
    for cell in buf.content.iter_mut() {
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
        cell.underline_color = Color::Reset;
    }
}

fn is_reversed(modifier: Modifier) -> bool {
    modifier.contains(Modifier::REVERSED)
}

fn print_run(out: &mut impl Write, style: Style, text: &str) -> io::Result<()> {
    queue!(
        out,
        PrintStyledContent(StyledContent::new(style.into_crossterm(), text))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::state::tests::snapshot;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn keys_map_to_commands() {
        let none = KeyModifiers::NONE;
        let cases = [
            (key(KeyCode::Char('q'), none), Some(ViewCommand::Quit)),
            (key(KeyCode::Esc, none), Some(ViewCommand::Quit)),
            (
                key(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Some(ViewCommand::Quit),
            ),
            (key(KeyCode::Char('c'), none), None),
            (
                key(KeyCode::Char('p'), none),
                Some(ViewCommand::TogglePause),
            ),
            (
                key(KeyCode::Char(' '), none),
                Some(ViewCommand::TogglePause),
            ),
            (
                key(KeyCode::Char('+'), KeyModifiers::SHIFT),
                Some(ViewCommand::Slower),
            ),
            (key(KeyCode::Char('='), none), Some(ViewCommand::Slower)),
            (key(KeyCode::Char('-'), none), Some(ViewCommand::Faster)),
            (
                key(KeyCode::Char('_'), KeyModifiers::SHIFT),
                Some(ViewCommand::Faster),
            ),
            (key(KeyCode::Char('x'), none), None),
            // Step mode's keys mean nothing in a free run.
            (key(KeyCode::Char('1'), none), None),
            (key(KeyCode::Enter, none), None),
            (key(KeyCode::Down, none), None),
            (key(KeyCode::Char('a'), none), None),
            (key(KeyCode::Char('r'), none), None),
        ];
        for (event, want) in cases {
            assert_eq!(command_for(event, false), want, "{event:?}");
        }
        let mut release = key(KeyCode::Char('q'), none);
        release.kind = KeyEventKind::Release;
        assert_eq!(command_for(release, false), None);
        assert_eq!(command_for(release, true), None);
    }

    #[test]
    fn step_mode_keys_map_to_commands() {
        let none = KeyModifiers::NONE;
        let shift = KeyModifiers::SHIFT;
        let cases = [
            (
                key(KeyCode::Char('1'), none),
                Some(ViewCommand::StepBuyer(0)),
            ),
            (
                key(KeyCode::Char('2'), none),
                Some(ViewCommand::StepBuyer(1)),
            ),
            (
                key(KeyCode::Char('9'), none),
                Some(ViewCommand::StepBuyer(8)),
            ),
            (key(KeyCode::Char('0'), none), None),
            (key(KeyCode::Enter, none), Some(ViewCommand::StepSelected)),
            // Space steps in step mode; p still pauses.
            (
                key(KeyCode::Char(' '), none),
                Some(ViewCommand::StepSelected),
            ),
            (
                key(KeyCode::Char('p'), none),
                Some(ViewCommand::TogglePause),
            ),
            (key(KeyCode::Down, none), Some(ViewCommand::SelectNext)),
            (key(KeyCode::Tab, none), Some(ViewCommand::SelectNext)),
            (key(KeyCode::Right, none), Some(ViewCommand::SelectNext)),
            (key(KeyCode::Up, none), Some(ViewCommand::SelectPrevious)),
            (
                key(KeyCode::BackTab, shift),
                Some(ViewCommand::SelectPrevious),
            ),
            (key(KeyCode::Left, none), Some(ViewCommand::SelectPrevious)),
            (key(KeyCode::Char('a'), none), Some(ViewCommand::RunFree)),
            (key(KeyCode::Char('u'), none), Some(ViewCommand::Undo)),
            (key(KeyCode::Char('r'), none), Some(ViewCommand::Restart)),
            (key(KeyCode::Char('s'), none), Some(ViewCommand::Save)),
            // Quitting and the delay keys are the same in both modes.
            (key(KeyCode::Char('q'), none), Some(ViewCommand::Quit)),
            (key(KeyCode::Esc, none), Some(ViewCommand::Quit)),
            (
                key(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Some(ViewCommand::Quit),
            ),
            (key(KeyCode::Char('+'), shift), Some(ViewCommand::Slower)),
            (key(KeyCode::Char('-'), none), Some(ViewCommand::Faster)),
            // Ctrl with a step key is not that key.
            (key(KeyCode::Char('s'), KeyModifiers::CONTROL), None),
            (key(KeyCode::Char('x'), none), None),
        ];
        for (event, want) in cases {
            assert_eq!(command_for(event, true), want, "{event:?}");
        }
    }

    #[test]
    fn release_without_an_owner_writes_nothing() {
        // No live view was started in this process, so this must not touch
        // the terminal (it would print escape codes into the test output).
        assert!(release().is_ok());
        assert_eq!(OWNER_PID.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn final_frame_prints_as_lines() {
        let snap = snapshot(10, 1, 10, 0);
        let height = render::preferred_height(&snap, 80);
        let mut buf = Buffer::empty(Rect::new(0, 0, 80, height));
        render::render(&snap, buf.area, &mut buf);
        let mut out = Vec::new();
        print_buffer(&mut out, &buf).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\r\n").count(), height as usize);
        assert!(text.contains("oversold 9"), "{text}");
        // Red, for the oversold counter.
        assert!(
            text.contains("\x1b[38;5;9m") || text.contains("\x1b[38;5;1m"),
            "{text:?}"
        );
        let plain: String = super::super::escapes::strip_escapes(&text);
        assert!(
            plain.contains("q quit  p pause  + slower  - faster"),
            "{plain}"
        );
    }
}
