//! Draws one snapshot. Everything here is a pure function of the snapshot and
//! the area, so tests render into a `TestBackend` and read the cells back.
//!
//! The full layout, top to bottom: settings header, a band with the remaining
//! count and the sale's counters, the buyer grid's legend, the grid, the
//! latest events, the keys. Below `MIN_FULL_WIDTH` × `MIN_FULL_HEIGHT` a
//! compact layout lists the essentials line by line instead.
//!
//! Step mode (`snap.stepper` set) draws its own panel instead: the
//! challenge, one row per buyer with its next step, the shared state, the
//! schedule so far, the last message and the keys; short screens drop the
//! least important parts first (see `step_sections`).

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Widget};

use super::state::{BuyerCell, BuyerState, Settings, Snapshot, Stepper, UNCOMMITTED, holder_text};

/// Rows of the band holding the remaining count and the counters.
const BAND_ROWS: u16 = 5;
/// The remaining box is never narrower, so its title fits with a margin.
const REMAINING_MIN_WIDTH: u16 = 15;
/// Counter column width that fits the long labels ("lost updates").
const WIDE_COUNTERS: u16 = 32;
/// Narrower than this, the band's two halves would both be unreadable.
const MIN_FULL_WIDTH: u16 = 40;
/// From this size on, the presentation layout: the four figures a room
/// watches in digits five rows high, in a two-by-two band.
const PRESENT_WIDTH: u16 = 120;
const PRESENT_HEIGHT: u16 = 40;
/// Rows of one big figure's box at the presentation size: the digits and
/// the border (`BIG_ROWS` pixel rows; twice as tall from `TALL_HEIGHT`).
const BIG_ROWS: u16 = 5;
const TALL_HEIGHT: u16 = 60;
/// Lines under the big figures: the lock, the rate and the verdict.
const PRESENT_INFO_ROWS: u16 = 2;
/// Header, band, legend, one grid row and the keys.
const MIN_FULL_HEIGHT: u16 = 1 + BAND_ROWS + 1 + 1 + 1;
/// Event rows the grid leaves free when choosing how roomy it can be, so a
/// big grid never squeezes the events out entirely.
const EVENT_RESERVE: u16 = 2;
/// Events the final (printed) frame keeps.
const FINAL_EVENTS: usize = 8;
/// Space between header, legend and status items.
const SEP: &str = "  ";
/// The header's note, in the delay factor's place, when `+` and `-` have
/// no delay to scale.
const NO_DELAYS: &str = "no delays: +/- idle";

/// Every state, in the order the legend lists them.
const STATES: [BuyerState; 11] = [
    BuyerState::NotStarted,
    BuyerState::Searching,
    BuyerState::Reading,
    BuyerState::InFlight,
    BuyerState::WaitingLock,
    BuyerState::HoldingLock,
    BuyerState::Writing,
    BuyerState::Bought,
    BuyerState::SoldOut,
    BuyerState::Exited,
    BuyerState::Crashed,
];

/// Draws `snap` over the whole frame.
pub(crate) fn draw(frame: &mut Frame, snap: &Snapshot) {
    let area = frame.area();
    render(snap, area, frame.buffer_mut());
}

/// Draws `snap` into `area` of `buf`; also used to print the final frame.
pub(crate) fn render(snap: &Snapshot, area: Rect, buf: &mut Buffer) {
    let area = area.intersection(buf.area);
    if area.is_empty() {
        return;
    }
    if let Some(stepper) = &snap.stepper {
        render_step(snap, stepper, area, buf);
        return;
    }
    let plan = plan(snap, area);
    if plan.compact {
        render_compact(snap, &plan, buf);
    } else {
        render_full(snap, &plan, buf);
    }
}

/// The height at which `snap` shows everything (whole grid, a few events)
/// at `width`: the final frame is printed at this height, not the screen's.
pub(crate) fn preferred_height(snap: &Snapshot, width: u16) -> u16 {
    if let Some(stepper) = &snap.stepper {
        return step_preferred_height(snap, stepper, width);
    }
    let events = snap.events.len().min(FINAL_EVENTS) as u16;
    if width < MIN_FULL_WIDTH {
        let status = pack(compact_items(snap), width, width).len() as u16;
        let grid = grid_rows_needed(snap.buyers.len(), dense(width));
        return status
            .saturating_add(1)
            .saturating_add(grid)
            .saturating_add(events);
    }
    let grid = best_grid(snap.buyers.len(), width, u16::MAX).1;
    let header = header_lines(snap, width).len().clamp(1, 2) as u16;
    let legend = legend_lines(snap, width, 2).len().clamp(1, 2) as u16;
    let height = (BAND_ROWS + 1 + header + legend)
        .saturating_add(grid)
        .saturating_add(events.max(EVENT_RESERVE));
    // Tall enough for the presentation layout, whose band is taller.
    let mut with_band = height;
    for _ in 0..2 {
        let band = band_rows(Rect::new(0, 0, width, with_band));
        with_band = height - BAND_ROWS + band;
    }
    with_band
}

/// Where everything goes for one frame.
pub(crate) struct Plan {
    compact: bool,
    /// The presentation layout (`PRESENT_WIDTH` × `PRESENT_HEIGHT` and up).
    present: bool,
    header: Rect,
    band: Rect,
    legend: Rect,
    /// The buyer grid; tests count glyphs in here.
    pub(crate) grid: Rect,
    events: Rect,
    keys: Rect,
    /// Compact layout only: the packed status lines.
    status: Rect,
    grid_format: GridFormat,
    header_lines: Vec<Line<'static>>,
    legend_lines: Vec<Line<'static>>,
    status_lines: Vec<Line<'static>>,
}

/// Lays `snap` out in `area`.
pub(crate) fn plan(snap: &Snapshot, area: Rect) -> Plan {
    if area.width < MIN_FULL_WIDTH || area.height < MIN_FULL_HEIGHT {
        plan_compact(snap, area)
    } else {
        plan_full(snap, area)
    }
}

/// The band's height: the counters beside the count, or the big figures.
fn band_rows(area: Rect) -> u16 {
    if is_presentation(area) {
        2 * (big_rows(area) + 2) + PRESENT_INFO_ROWS
    } else {
        BAND_ROWS
    }
}

fn is_presentation(area: Rect) -> bool {
    area.width >= PRESENT_WIDTH && area.height >= PRESENT_HEIGHT
}

/// Text rows of the big digits at this size.
fn big_rows(area: Rect) -> u16 {
    if area.height >= TALL_HEIGHT {
        2 * BIG_ROWS
    } else {
        BIG_ROWS
    }
}

fn plan_full(snap: &Snapshot, area: Rect) -> Plan {
    let width = area.width;
    let band_rows = band_rows(area);
    let fixed = MIN_FULL_HEIGHT - 1 - BAND_ROWS + band_rows; // all but the grid row
    let room = area.height.saturating_sub(fixed);
    let mut header = header_lines(snap, width);
    // The settings come first: a second header line (so the delays and
    // the seed are never cut off) before the grid's rows and the events.
    let header_rows = if header.len() > 1 && room > 1 { 2 } else { 1 };
    let room = room - (header_rows - 1);
    let (grid_format, grid_rows) = best_grid(
        snap.buyers.len(),
        width,
        room.saturating_sub(EVENT_RESERVE).max(1),
    );
    let grid_rows = grid_rows.min(room);
    // Rows left after the reserve go to a second legend line.
    let spare = room.saturating_sub(grid_rows + EVENT_RESERVE);
    header.truncate(header_rows as usize);
    let mut legend = legend_lines(snap, width, if spare > 0 { 2 } else { 1 });
    legend.truncate(if spare > 0 { 2 } else { 1 });
    let legend_rows = legend.len().max(1) as u16;

    let [header_area, band, legend_area, grid, events, keys] = Layout::vertical([
        Constraint::Length(header_rows),
        Constraint::Length(band_rows),
        Constraint::Length(legend_rows),
        Constraint::Length(grid_rows),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    Plan {
        compact: false,
        present: is_presentation(area),
        header: header_area,
        band,
        legend: legend_area,
        grid,
        events,
        keys,
        status: Rect::default(),
        grid_format,
        header_lines: header,
        legend_lines: legend,
        status_lines: Vec::new(),
    }
}

fn plan_compact(snap: &Snapshot, area: Rect) -> Plan {
    let width = area.width;
    let mut status = pack(compact_items(snap), width, width);
    status.truncate(area.height as usize);
    let status_rows = status.len() as u16;
    let keys_rows = (area.height - status_rows).min(1);
    let left = area.height - status_rows - keys_rows;
    let format = dense(width);
    let grid_rows = grid_rows_needed(snap.buyers.len(), format).min(left);
    let [status_area, keys, grid, events] = Layout::vertical([
        Constraint::Length(status_rows),
        Constraint::Length(keys_rows),
        Constraint::Length(grid_rows),
        Constraint::Min(0),
    ])
    .areas(area);
    Plan {
        compact: true,
        present: false,
        header: Rect::default(),
        band: Rect::default(),
        legend: Rect::default(),
        grid,
        events,
        keys,
        status: status_area,
        grid_format: format,
        header_lines: Vec::new(),
        legend_lines: Vec::new(),
        status_lines: status,
    }
}

fn render_full(snap: &Snapshot, plan: &Plan, buf: &mut Buffer) {
    render_header(snap, plan, buf);
    if plan.present {
        render_big_band(snap, plan.band, buf);
    } else {
        render_band(snap, plan.band, buf);
    }
    Paragraph::new(plan.legend_lines.clone()).render(plan.legend, buf);
    render_grid(snap, plan, buf);
    render_events(snap, plan.events, buf);
    keys_line(snap, plan.keys.width).render(plan.keys, buf);
}

fn render_compact(snap: &Snapshot, plan: &Plan, buf: &mut Buffer) {
    Paragraph::new(plan.status_lines.clone()).render(plan.status, buf);
    keys_line(snap, plan.keys.width).render(plan.keys, buf);
    render_grid(snap, plan, buf);
    render_events(snap, plan.events, buf);
}

// ---------------------------------------------------------------- header

fn render_header(snap: &Snapshot, plan: &Plan, buf: &mut Buffer) {
    let status = Line::from(status_spans(snap));
    let status_width = status.width() as u16;
    let [settings, _, status_area] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(status_width),
    ])
    .areas(plan.header);
    // The first line shares its row with the status; later ones get the
    // full width, as `header_lines` packed them.
    let mut first = plan.header;
    first.height = first.height.min(1);
    first.width = settings.width;
    if let Some(line) = plan.header_lines.first() {
        line.clone().render(first, buf);
    }
    let rest = Rect {
        y: plan.header.y.saturating_add(1),
        height: plan.header.height.saturating_sub(1),
        ..plan.header
    };
    Paragraph::new(
        plan.header_lines
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>(),
    )
    .render(rest, buf);
    status.render(
        Rect {
            height: status_area.height.min(1),
            ..status_area
        },
        buf,
    );
}

/// The delay factor and the pause flag: never cut off, so they sit at the
/// right end of the header.
fn status_spans(snap: &Snapshot) -> Vec<Span<'static>> {
    let mut spans = vec![if snap.settings.delays {
        Span::styled(
            factor_text(snap.delay_factor),
            Style::new().add_modifier(Modifier::BOLD),
        )
    } else {
        // + and - scale the delays; with none they have nothing to do.
        Span::raw(NO_DELAYS)
    }];
    if snap.paused {
        spans.push(Span::raw(SEP));
        spans.push(Span::styled(
            "PAUSED",
            Style::new()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    spans
}

/// Settings as whole items, most important first, so whatever does not fit
/// falls off the end.
fn header_lines(snap: &Snapshot, width: u16) -> Vec<Line<'static>> {
    let s = &snap.settings;
    let mut items = vec![
        pair("store", clean(&s.store)),
        pair("lock", clean(&s.lock)),
        pair("buyers", s.workers.to_string()),
        pair("tickets", s.tickets.to_string()),
        pair("wants", clean(&s.wants)),
    ];
    items.extend(delay_pairs(s, true));
    if s.jitter {
        items.push(vec![Span::styled("jitter", Style::new().fg(Color::Cyan))]);
    }
    items.push(pair("seed", s.seed.to_string()));
    let status_width = Line::from(status_spans(snap)).width() as u16;
    pack(items, width.saturating_sub(status_width + 1), width)
}

/// The delays as the header shows them (`all`: the zero ones too). Under a
/// database's `atomic` nothing is read before the one statement: both
/// delays are its round trip, spent before it runs, and say so.
fn delay_pairs(s: &Settings, all: bool) -> Vec<Vec<Span<'static>>> {
    crate::config::delay_names(s.round_trip, &s.read_delay, &s.write_delay)
        .into_iter()
        .filter(|(_, d)| all || d.as_str() != "0")
        .map(|(label, d)| pair(label, clean(&d)))
        .collect()
}

/// A label in the terminal's own colour (dark grey vanishes on a
/// projector) and a bold value.
fn pair(label: &'static str, value: String) -> Vec<Span<'static>> {
    vec![
        Span::raw(format!("{label} ")),
        Span::styled(value, Style::new().add_modifier(Modifier::BOLD)),
    ]
}

// ------------------------------------------------------------------ band

fn render_band(snap: &Snapshot, area: Rect, buf: &mut Buffer) {
    let text = remaining_text(snap.remaining);
    // The box is as wide as the widest count the sale can show (all its
    // tickets, or what it shows now), so it keeps its width as the count
    // falls and when a torn read shows the last one.
    let widest = widest_count(snap, &text);
    // Big digits only when they leave the counters room for their full
    // labels; otherwise a bold number in a narrower box.
    let big_box = (big_width(&widest) + 4).max(REMAINING_MIN_WIDTH);
    let big = area.width >= big_box + 1 + WIDE_COUNTERS;
    let left_width = if big {
        big_box
    } else {
        (widest.len() as u16 + 4)
            .max(REMAINING_MIN_WIDTH)
            .min(area.width / 2)
    };
    let [left, _, right] = Layout::horizontal([
        Constraint::Length(left_width),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    render_remaining(snap, &text, big, left, buf);

    let narrow = right.width < WIDE_COUNTERS;
    let rows: [Rect; BAND_ROWS as usize] =
        Layout::vertical([Constraint::Length(1); BAND_ROWS as usize]).areas(right);
    render_gauge(snap, rows[0], buf);
    let lost_label = if narrow { "lost" } else { "lost updates" };
    let mut race = race_spans(snap, lost_label);
    if let Some(torn) = torn_text(snap, narrow) {
        race.push(Span::raw(SEP));
        race.push(Span::raw(torn));
    }
    Line::from(race).render(rows[1], buf);
    let (lock, rate) = if narrow {
        ("lock", "buys/s")
    } else {
        ("lock:", "purchases/s")
    };
    let mut contention = format!(
        "{}{SEP}{}",
        holder_item(snap, lock),
        contention_text(snap, narrow)
    );
    // Other runs' purchases make the line longer: short words before a
    // figure is cut off.
    if contention.chars().count() > usize::from(right.width) {
        contention = format!(
            "{}{SEP}{}",
            holder_item(snap, "lock"),
            contention_text(snap, true)
        );
    }
    Line::raw(contention).render(rows[2], buf);
    let rate = snap
        .ops_per_sec
        .map(|r| format!("{} {rate}{SEP}", rate_text(r)))
        .unwrap_or_default();
    Line::raw(format!(
        "{rate}{}{}",
        if narrow { "" } else { "elapsed " },
        elapsed_text(snap)
    ))
    .render(rows[3], buf);
    verdict(snap, narrow).render(rows[4], buf);
}

/// Slow lab runs sell a few tickets a second, so those keep a decimal;
/// throughput runs read better as 46.30M than as eight digits.
fn rate_text(per_sec: f64) -> String {
    if per_sec < 10.0 {
        format!("{per_sec:.1}")
    } else {
        crate::report::human_rate(per_sec)
    }
}

/// The widest count text the remaining box must hold.
fn widest_count(snap: &Snapshot, text: &str) -> String {
    let all = snap.settings.tickets.to_string();
    if all.len() >= text.len() {
        all
    } else {
        text.to_string()
    }
}

/// "unreadable N×": how often the view found the file store mid-rewrite
/// (its own reads, not the buyers' torn reads the summary counts), so a
/// count shown as "last read" is explained.
fn torn_text(snap: &Snapshot, _narrow: bool) -> Option<String> {
    (snap.settings.store == "file").then(|| format!("unreadable {}×", snap.torn_reads))
}

fn count_style(snap: &Snapshot) -> Style {
    let style = Style::new().add_modifier(Modifier::BOLD);
    if snap.remaining.is_some_and(|n| n < 0) {
        // A negative count can only come from a race.
        style.fg(Color::Red)
    } else if snap.remaining.is_none() || snap.count_stale {
        style.fg(Color::Yellow)
    } else {
        style
    }
}

/// The remaining box's block: titled, and marked "last read" when the
/// count shown is not this moment's.
fn count_block(snap: &Snapshot, style: Style) -> Block<'static> {
    let block = Block::bordered()
        .title(" remaining ")
        .title_alignment(Alignment::Center)
        .border_style(style);
    if snap.count_stale {
        block.title_bottom(Line::from(" last read ").centered())
    } else {
        block
    }
}

fn render_remaining(snap: &Snapshot, text: &str, big: bool, area: Rect, buf: &mut Buffer) {
    let style = count_style(snap);
    let block = count_block(snap, style);
    let inner = block.inner(area);
    block.render(area, buf);
    let big =
        big_lines(text).filter(|_| big && inner.width >= big_width(text) && inner.height >= 3);
    let (lines, height) = match big {
        Some(big) => (big.into_iter().map(Line::from).collect(), 3),
        None => (vec![Line::from(text.to_string())], 1),
    };
    let top = inner.y + inner.height.saturating_sub(height) / 2;
    let target = Rect {
        y: top,
        height: height.min(inner.height),
        ..inner
    };
    Paragraph::new(lines)
        .style(style)
        .alignment(Alignment::Center)
        .render(target, buf);
}

fn render_gauge(snap: &Snapshot, area: Rect, buf: &mut Buffer) {
    let tickets = snap.settings.tickets;
    // Sold can pass tickets when the sale is racy; the bar just stays full.
    let ratio = if tickets == 0 {
        0.0
    } else {
        (snap.sold as f64 / tickets as f64).clamp(0.0, 1.0)
    };
    let fill = if snap.oversold > 0 {
        Color::Red
    } else {
        Color::Green
    };
    Gauge::default()
        .ratio(ratio)
        .use_unicode(true)
        .gauge_style(Style::new().fg(fill).bg(Color::DarkGray))
        .label(Span::styled(
            format!(" sold {} / {tickets}", snap.sold),
            Style::new().add_modifier(Modifier::BOLD),
        ))
        .render(area, buf);
}

/// Oversold and lost updates: red the moment they are not zero, because
/// that is the race made visible.
fn race_spans(snap: &Snapshot, lost_label: &'static str) -> Vec<Span<'static>> {
    let lost = match snap.lost_updates {
        Some(n) => n.to_string(),
        None => "?".to_string(),
    };
    vec![
        counter(format!("oversold {}", snap.oversold), snap.oversold > 0),
        Span::raw(SEP),
        counter(
            format!("{lost_label} {lost}"),
            snap.lost_updates.is_some_and(|n| n > 0),
        ),
    ]
}

fn counter(text: String, alarming: bool) -> Span<'static> {
    if alarming {
        Span::styled(text, alarm())
    } else {
        Span::raw(text)
    }
}

/// The one style that means "the race happened".
fn alarm() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// One line saying what the counters add up to.
fn verdict(snap: &Snapshot, narrow: bool) -> Line<'static> {
    if snap.oversold > 0 || snap.lost_updates.is_some_and(|n| n > 0) {
        let text = if narrow {
            "race: sales overwritten"
        } else {
            "race: concurrent writes overwrote sales"
        };
        Line::styled(text, alarm())
    } else if snap.stopped {
        Line::styled("stopped", Style::new().fg(Color::Yellow))
    } else if snap.finished {
        Line::styled("sale finished", Style::new().fg(Color::Green))
    } else if snap.paused {
        Line::styled("paused", Style::new().fg(Color::Yellow))
    } else {
        Line::styled("selling", Style::new())
    }
}

// ---------------------------------------------------------- presentation

/// The presentation band: the count, sold / tickets, oversold and lost
/// updates in big digits, two by two, and two lines for the rest.
fn render_big_band(snap: &Snapshot, area: Rect, buf: &mut Buffer) {
    let box_rows = (area.height.saturating_sub(PRESENT_INFO_ROWS)) / 2;
    let [top, bottom, info] = Layout::vertical([
        Constraint::Length(box_rows),
        Constraint::Length(box_rows),
        Constraint::Min(0),
    ])
    .areas(area);
    let halves = |r: Rect| -> [Rect; 3] {
        Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(r)
    };
    let [count_area, _, sold_area] = halves(top);
    let [oversold_area, _, lost_area] = halves(bottom);

    let figure_style = |alarming: bool| {
        if alarming {
            alarm()
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    };
    let tickets = snap.settings.tickets;
    let count = remaining_text(snap.remaining);
    let mut lost_block = big_block(
        " lost updates ",
        figure_style(snap.lost_updates.is_some_and(|n| n > 0)),
    );
    if snap.count_stale {
        lost_block = lost_block.title_bottom(Line::from(" last read ").centered());
    }
    let sold_style = if snap.oversold > 0 {
        alarm()
    } else {
        Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
    };
    // (block, text, widest text it may show, style, area)
    let figures = [
        (
            count_block(snap, count_style(snap)),
            count.clone(),
            widest_count(snap, &count),
            count_style(snap),
            count_area,
        ),
        (
            big_block(" sold / tickets ", sold_style),
            format!("{}/{tickets}", snap.sold),
            format!("{tickets}/{tickets}"),
            sold_style,
            sold_area,
        ),
        (
            big_block(" oversold ", figure_style(snap.oversold > 0)),
            snap.oversold.to_string(),
            snap.oversold.to_string(),
            figure_style(snap.oversold > 0),
            oversold_area,
        ),
        (
            lost_block,
            snap.lost_updates.map_or("?".to_string(), |n| n.to_string()),
            snap.lost_updates.map_or("?".to_string(), |n| n.to_string()),
            figure_style(snap.lost_updates.is_some_and(|n| n > 0)),
            lost_area,
        ),
    ];
    // One scale for all four, so no figure looks more important than
    // another: the biggest every box can hold.
    let scale = BIG_SCALES.into_iter().find(|&scale| {
        figures
            .iter()
            .all(|(block, text, widest, _, area)| fits_big(block.inner(*area), text, widest, scale))
    });
    for (block, text, _, style, area) in figures {
        render_big(block, &text, scale, style, area, buf);
    }

    let mut first = vec![Span::raw(format!(
        "{}{SEP}{}",
        holder_item(snap, "lock:"),
        contention_text(snap, false)
    ))];
    if let Some(torn) = torn_text(snap, false) {
        first.push(Span::raw(SEP));
        first.push(Span::raw(torn));
    }
    if let Some(rate) = snap.ops_per_sec {
        first.push(Span::raw(format!("{SEP}{} purchases/s", rate_text(rate))));
    }
    first.push(Span::raw(format!("{SEP}elapsed {}", elapsed_text(snap))));
    let rows: [Rect; PRESENT_INFO_ROWS as usize] =
        Layout::vertical([Constraint::Length(1); PRESENT_INFO_ROWS as usize]).areas(info);
    Line::from(first).render(rows[0], buf);
    verdict(snap, false).render(rows[1], buf);
}

/// Scales of the big digits, biggest first: (across, down).
const BIG_SCALES: [(u16, u16); 3] = [(2, 2), (2, 1), (1, 1)];

/// Whether `text`, and `widest`, fit `inner` at `scale`.
fn fits_big(inner: Rect, text: &str, widest: &str, (sx, sy): (u16, u16)) -> bool {
    let need = big_width(widest).max(big_width(text)) * sx;
    need <= inner.width && BIG_ROWS * sy <= inner.height
}

fn big_block(title: &'static str, style: Style) -> Block<'static> {
    Block::bordered()
        .title(title)
        .title_alignment(Alignment::Center)
        .border_style(style)
}

/// Draws `text` in the box at `scale`, or as plain bold text where even
/// the smallest big digits do not fit (`None`).
fn render_big(
    block: Block<'static>,
    text: &str,
    scale: Option<(u16, u16)>,
    style: Style,
    area: Rect,
    buf: &mut Buffer,
) {
    let inner = block.inner(area);
    block.render(area, buf);
    let lines: Vec<Line> = match scale.and_then(|(sx, sy)| tall_lines(text, sx, sy)) {
        Some(rows) => rows.into_iter().map(Line::from).collect(),
        None => vec![Line::from(text.to_string())],
    };
    let height = (lines.len() as u16).min(inner.height);
    let target = Rect {
        y: inner.y + inner.height.saturating_sub(height) / 2,
        height,
        ..inner
    };
    Paragraph::new(lines)
        .style(style)
        .alignment(Alignment::Center)
        .render(target, buf);
}

/// `text` in the 3×5 font, one cell per pixel, scaled `sx` across and `sy`
/// down: `5 * sy` rows high. `None` if a character has no glyph.
fn tall_lines(text: &str, sx: u16, sy: u16) -> Option<Vec<String>> {
    let mut rows = vec![String::new(); 5];
    for (i, c) in text.chars().enumerate() {
        let bits = font(c)?;
        for (r, row) in rows.iter_mut().enumerate() {
            if i > 0 {
                row.push_str(&" ".repeat(sx as usize));
            }
            for col in (0..3).rev() {
                let pixel = if bits[r] >> col & 1 == 1 { '█' } else { ' ' };
                row.extend(std::iter::repeat_n(pixel, sx as usize));
            }
        }
    }
    Some(
        rows.into_iter()
            .flat_map(|row| std::iter::repeat_n(row, sy as usize))
            .collect(),
    )
}

// ------------------------------------------------------------------ grid

/// How the grid is drawn: with row labels (the first buyer's number) and a
/// space between glyphs when there is room, densely when there is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GridFormat {
    /// Columns for the row label, 0 for none.
    label: u16,
    /// Columns per buyer: 1 (dense) or 2 (spaced).
    cell: u16,
    /// Buyers per row.
    per_row: u16,
}

fn dense(width: u16) -> GridFormat {
    GridFormat {
        label: 0,
        cell: 1,
        per_row: width,
    }
}

fn grid_rows_needed(buyers: usize, format: GridFormat) -> u16 {
    if buyers == 0 || format.per_row == 0 {
        return 0;
    }
    u16::try_from(buyers.div_ceil(format.per_row as usize)).unwrap_or(u16::MAX)
}

/// The roomiest format whose rows fit `budget`; dense (possibly cut off)
/// when none does.
fn best_grid(buyers: usize, width: u16, budget: u16) -> (GridFormat, u16) {
    let digits = buyers.to_string().len() as u16;
    let label = digits + 1;
    // Rows hold a multiple of ten buyers, so "buyer 512" is easy to find.
    let round = |n: u16| if n >= 10 { n - n % 10 } else { n };
    let candidates = [
        GridFormat {
            label,
            cell: 2,
            per_row: round(width.saturating_sub(label) / 2),
        },
        GridFormat {
            label,
            cell: 1,
            per_row: round(width.saturating_sub(label)),
        },
    ];
    for format in candidates {
        let rows = grid_rows_needed(buyers, format);
        if format.per_row > 0 && rows <= budget {
            return (format, rows);
        }
    }
    let format = dense(width);
    (format, grid_rows_needed(buyers, format).min(budget))
}

fn render_grid(snap: &Snapshot, plan: &Plan, buf: &mut Buffer) {
    let format = plan.grid_format;
    let rows = plan.grid.height as usize;
    if rows == 0 || format.per_row == 0 {
        return;
    }
    let per_row = format.per_row as usize;
    let total = snap.buyers.len();
    let mut shown = total.min(rows * per_row);
    let mut more = None;
    if shown < total {
        // Say how many are cut off, at the end of the last row, rather than
        // let the grid silently end early.
        let note_width = format!(" +{total} more").len();
        let last_row = per_row.saturating_sub(note_width.div_ceil(format.cell as usize));
        shown = (rows - 1) * per_row + last_row;
        more = Some(Span::raw(format!(" +{} more", total - shown)));
    }
    let mut lines: Vec<Line> = snap.buyers[..shown]
        .chunks(per_row)
        .enumerate()
        .map(|(row, cells)| {
            grid_line(
                row * per_row,
                cells,
                snap.holder,
                snap.settings.commits,
                format,
            )
        })
        .collect();
    if let Some(more) = more {
        if lines.len() < rows {
            lines.push(Line::default());
        }
        if let Some(last) = lines.last_mut() {
            last.spans.push(more);
        }
    }
    Paragraph::new(lines).render(plan.grid, buf);
}

fn grid_line(
    first: usize,
    cells: &[BuyerCell],
    holder: Option<usize>,
    commits: bool,
    format: GridFormat,
) -> Line<'static> {
    let mut spans = Vec::new();
    if format.label > 0 {
        // Buyers are numbered from 1 wherever people read them.
        spans.push(Span::raw(format!(
            "{:>w$} ",
            first + 1,
            w = format.label as usize - 1
        )));
    }
    let marks: Vec<(char, Style)> = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| cell_mark(cell, holder == Some(first + i), commits))
        .collect();
    // One span per run of equal marks keeps 1000 buyers cheap to draw.
    for run in marks.chunk_by(|a, b| a == b) {
        let (glyph, style) = run[0];
        let text: String = if format.cell == 2 {
            run.iter().flat_map(|_| [glyph, ' ']).collect()
        } else {
            std::iter::repeat_n(glyph, run.len()).collect()
        };
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

/// What a buyer's cell shows. A sale just overwritten comes first: it is
/// the race made visible, and lasts only a moment. Then the lock: the
/// holder is marked for as long as it holds it, whatever step it is at
/// inside (reading, writing), since that is what a room watches for.
fn cell_mark(cell: &BuyerCell, holds: bool, commits: bool) -> (char, Style) {
    if cell.lost_sale {
        (LOST_GLYPH, alarm().add_modifier(Modifier::REVERSED))
    } else if holds {
        let style = state_style(BuyerState::HoldingLock);
        (
            holder_mark(commits).0,
            style.add_modifier(Modifier::REVERSED),
        )
    } else {
        (glyph(cell.state), state_style(cell.state))
    }
}

/// The holder's glyph and its legend's words: the lock's `L`, or, where
/// no lock is taken (`Settings::commits`), `U` for the uncommitted write.
fn holder_mark(commits: bool) -> (char, &'static str) {
    if commits {
        ('U', UNCOMMITTED)
    } else {
        let s = BuyerState::HoldingLock;
        (glyph(s), state_label(s))
    }
}

/// The waiting glyph's label on SQLite.
const SQLITE_WAITING: &str = "waits for the database";

/// The mark of a buyer whose sale a stale write just overwrote.
pub(crate) const LOST_GLYPH: char = '✗';

/// The glyph of a state: each is distinct, so the grid reads without colour.
pub(crate) const fn glyph(state: BuyerState) -> char {
    match state {
        BuyerState::NotStarted => '·',
        BuyerState::Searching => 's',
        BuyerState::Reading => 'r',
        BuyerState::InFlight => '>',
        // Not `w`: waiting and writing must differ by more than case.
        BuyerState::WaitingLock => '~',
        BuyerState::HoldingLock => 'L',
        BuyerState::Writing => 'W',
        BuyerState::Bought => '$',
        BuyerState::SoldOut => 'x',
        BuyerState::Exited => '-',
        BuyerState::Crashed => '!',
    }
}

fn state_style(state: BuyerState) -> Style {
    let style = Style::new();
    match state {
        BuyerState::NotStarted | BuyerState::Exited => style.fg(Color::DarkGray),
        BuyerState::Searching => style.fg(Color::Blue),
        BuyerState::Reading => style.fg(Color::Cyan),
        BuyerState::InFlight => style.fg(Color::LightBlue),
        BuyerState::WaitingLock => style.fg(Color::Yellow),
        BuyerState::HoldingLock => style.fg(Color::Magenta).add_modifier(Modifier::BOLD),
        BuyerState::Writing => style.fg(Color::LightMagenta),
        BuyerState::Bought => style.fg(Color::Green),
        BuyerState::SoldOut => style.fg(Color::Gray),
        // Plain red is kept for the race counters alone.
        BuyerState::Crashed => style.fg(Color::LightRed).add_modifier(Modifier::BOLD),
    }
}

fn state_label(state: BuyerState) -> &'static str {
    match state {
        BuyerState::NotStarted => "not started",
        BuyerState::Searching => "searching",
        BuyerState::Reading => "reading",
        BuyerState::InFlight => "update in flight",
        BuyerState::WaitingLock => "waiting",
        BuyerState::HoldingLock => "holds lock",
        BuyerState::Writing => "writing",
        BuyerState::Bought => "bought",
        BuyerState::SoldOut => "sold out",
        BuyerState::Exited => "exited",
        BuyerState::Crashed => "crashed",
    }
}

/// The legend in at most `max_rows` lines: all states if they fit, else
/// only those on the grid right now.
fn legend_lines(snap: &Snapshot, width: u16, max_rows: usize) -> Vec<Line<'static>> {
    let items = |keep: &dyn Fn(BuyerState) -> bool| -> Vec<Vec<Span<'static>>> {
        STATES
            .into_iter()
            .filter(|s| keep(*s))
            // Only a database's `atomic` sends its statement on a round
            // trip of its own.
            .filter(|s| *s != BuyerState::InFlight || snap.settings.round_trip)
            .map(|s| {
                let (g, label) = match s {
                    BuyerState::HoldingLock => holder_mark(snap.settings.commits),
                    // On SQLite every wait is for the database's write
                    // lock: the lock step's, and a statement's busy wait.
                    BuyerState::WaitingLock if snap.settings.store == "sqlite" => {
                        (glyph(s), SQLITE_WAITING)
                    }
                    s => (glyph(s), state_label(s)),
                };
                vec![
                    Span::styled(g.to_string(), state_style(s)),
                    Span::raw(format!(" {label}")),
                ]
            })
            .collect()
    };
    let lost = || {
        vec![
            Span::styled(
                LOST_GLYPH.to_string(),
                alarm().add_modifier(Modifier::REVERSED),
            ),
            Span::raw(" sale overwritten"),
        ]
    };
    // The overwrite mark is explained once the race has shown itself.
    let raced = snap.lost_updates.is_some_and(|n| n > 0) || snap.buyers.iter().any(|b| b.lost_sale);
    let mut all = items(&|_| true);
    if raced {
        all.push(lost());
    }
    let all = pack(all, width, width);
    if all.len() <= max_rows {
        return all;
    }
    let mut shown = items(&|s| {
        snap.buyers.iter().any(|b| b.state == s)
            || (s == BuyerState::HoldingLock && snap.holder.is_some())
    });
    if snap.buyers.iter().any(|b| b.lost_sale) {
        shown.push(lost());
    }
    pack(shown, width, width)
}

// ---------------------------------------------------------- events, keys

fn render_events(snap: &Snapshot, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let rows = area.height as usize;
    let lines: Vec<Line> = if snap.events.is_empty() {
        vec![Line::raw("no events yet")]
    } else {
        let skip = snap.events.len().saturating_sub(rows);
        snap.events[skip..].iter().map(|e| event_line(e)).collect()
    };
    Paragraph::new(lines).render(area, buf);
}

fn event_line(event: &str) -> Line<'static> {
    let text = clean(event);
    let style = if text.contains("overwrote") {
        alarm()
    } else if text.contains("crash") {
        state_style(BuyerState::Crashed)
    } else {
        Style::new()
    };
    Line::styled(text, style)
}

/// The keys, spelled out when the line is wide enough.
fn keys_line(snap: &Snapshot, width: u16) -> Line<'static> {
    let key = Style::new().add_modifier(Modifier::BOLD);
    let pause = if snap.paused { "resume" } else { "pause" };
    let long = [
        ("q", "quit"),
        ("p", pause),
        ("+", "slower"),
        ("-", "faster"),
    ];
    let short = [("q", "quit"), ("p", pause), ("+", "slow"), ("-", "fast")];
    let build = |keys: [(&'static str, &'static str); 4], gap: &'static str, n: usize| {
        let mut spans = Vec::new();
        for (i, (k, what)) in keys.into_iter().take(n).enumerate() {
            if i > 0 {
                spans.push(Span::raw(gap));
            }
            spans.push(Span::styled(k, key));
            spans.push(Span::raw(format!(" {what}")));
        }
        Line::from(spans)
    };
    // Without delays + and - have nothing to scale (the header says so).
    let keys = if snap.settings.delays { 4 } else { 2 };
    let mut line = build(long, SEP, keys);
    if line.width() > width as usize {
        line = build(short, " ", keys);
    }
    let done = if snap.stopped {
        Some(("sale stopped", Color::Yellow))
    } else {
        snap.finished.then_some(("sale finished", Color::Green))
    };
    if let Some((done, colour)) = done {
        if line.width() + SEP.len() + done.len() <= width as usize {
            line.spans.push(Span::raw(SEP));
            line.spans.push(Span::styled(done, Style::new().fg(colour)));
        }
    }
    line
}

// ------------------------------------------------------------- step mode

/// Step panel parts that are never dropped for room: the challenge, the
/// banner, the buyers' rows and the shared state.
const ESSENTIAL: u8 = 10;
/// Buyer rows the panel makes room for before it keeps anything optional.
const STEP_MIN_BUYERS: usize = 4;
/// Buyer rows the printed final frame lists at most.
const STEP_FINAL_BUYERS: usize = 30;
/// Lines the last message may wrap onto.
const MESSAGE_LINES: usize = 2;
/// The selected buyer's marker.
const SELECTED: &str = "▶ ";

/// What a part of the step panel is, for the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// Lines drawn as they are.
    Lines,
    /// The buyers' rows, which scroll when they do not all fit.
    Buyers,
    /// The keys, pinned to the bottom row.
    Keys,
}

/// One part of the step panel and how much it matters.
struct Section {
    part: Part,
    /// Dropped lowest first when rows are short; `ESSENTIAL` never.
    keep: u8,
    lines: Vec<Line<'static>>,
}

impl Section {
    fn new(part: Part, keep: u8, lines: Vec<Line<'static>>) -> Section {
        Section { part, keep, lines }
    }
}

fn render_step(snap: &Snapshot, st: &Stepper, area: Rect, buf: &mut Buffer) {
    let sections = step_sections(snap, st, area.width);
    let sections = step_layout(sections, area.height as usize, st);
    let mut y = area.y;
    let mut bottom = area.bottom();
    for section in &sections {
        if section.part == Part::Keys {
            if let Some(line) = section.lines.first() {
                bottom = bottom.saturating_sub(1).max(area.y);
                line.clone()
                    .render(Rect::new(area.x, bottom, area.width, 1), buf);
            }
        }
    }
    for section in sections.iter().filter(|s| s.part != Part::Keys) {
        for line in &section.lines {
            if y >= bottom {
                return;
            }
            line.clone()
                .render(Rect::new(area.x, y, area.width, 1), buf);
            y += 1;
        }
    }
}

/// The step panel at `width` with every part, but no more buyer rows than
/// `STEP_FINAL_BUYERS`: the final frame is printed this high.
fn step_preferred_height(snap: &Snapshot, st: &Stepper, width: u16) -> u16 {
    let sections = step_sections(snap, st, width);
    let buyers = st.buyers.len();
    let fixed: usize = sections
        .iter()
        .filter(|s| s.part != Part::Buyers)
        .map(|s| s.lines.len())
        .sum();
    let rows = if buyers > STEP_FINAL_BUYERS {
        STEP_FINAL_BUYERS + 1
    } else {
        buyers
    };
    u16::try_from(fixed + rows).unwrap_or(u16::MAX)
}

/// Drops the least important parts until the buyers' rows (up to
/// `STEP_MIN_BUYERS`) fit in `height`, then gives the buyers what is left,
/// scrolled so the selected one shows.
fn step_layout(mut sections: Vec<Section>, height: usize, st: &Stepper) -> Vec<Section> {
    let buyers = st.buyers.len();
    let fixed = |sections: &[Section]| -> usize {
        sections
            .iter()
            .filter(|s| s.part != Part::Buyers)
            .map(|s| s.lines.len())
            .sum()
    };
    while fixed(&sections) + buyers.min(STEP_MIN_BUYERS) > height {
        let victim = sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.keep < ESSENTIAL)
            .min_by_key(|&(i, s)| (s.keep, std::cmp::Reverse(i)))
            .map(|(i, _)| i);
        match victim {
            Some(i) => {
                sections.remove(i);
            }
            None => break,
        }
    }
    let rows = height.saturating_sub(fixed(&sections));
    if let Some(section) = sections.iter_mut().find(|s| s.part == Part::Buyers) {
        scroll_buyers(&mut section.lines, rows, st.selected);
    }
    sections
}

/// Keeps `rows` of the buyers' lines, the selected buyer among them; when
/// some are cut off, the last row says which are shown.
fn scroll_buyers(lines: &mut Vec<Line<'static>>, rows: usize, selected: usize) {
    let total = lines.len();
    if total <= rows {
        return;
    }
    if rows < 2 {
        // No room for a note: the selected buyer alone, or nothing.
        let keep = lines.get(selected.min(total - 1)).cloned();
        lines.clear();
        lines.extend(keep.into_iter().take(rows));
        return;
    }
    let shown = rows - 1;
    let start = selected
        .saturating_sub(shown / 2)
        .min(total.saturating_sub(shown));
    let end = start + shown;
    let mut kept: Vec<Line<'static>> = lines.drain(start..end).collect();
    kept.push(Line::styled(
        format!("  buyers {}–{end} of {total} shown; ↑↓ select", start + 1),
        Style::new(),
    ));
    *lines = kept;
}

/// Every part of the step panel in screen order, laid out for `width`.
fn step_sections(snap: &Snapshot, st: &Stepper, width: u16) -> Vec<Section> {
    let mut sections = Vec::new();
    let challenge = wrap(&clean(&st.challenge), width)
        .into_iter()
        .map(|l| Line::styled(l, Style::new().add_modifier(Modifier::BOLD)))
        .collect();
    sections.push(Section::new(Part::Lines, ESSENTIAL, challenge));
    if let Some(schedule) = &st.achieved {
        sections.push(Section::new(
            Part::Lines,
            ESSENTIAL,
            banner(&format!("Oversold! schedule: {}", clean(schedule)), width),
        ));
    }
    let mut settings = pack(step_settings(snap), width, width);
    settings.truncate(1);
    sections.push(Section::new(Part::Lines, 3, settings));
    sections.push(Section::new(Part::Lines, 1, vec![Line::default()]));
    let (header, rows) = buyer_rows(snap, st, width);
    sections.push(Section::new(Part::Lines, 2, header));
    sections.push(Section::new(Part::Buyers, ESSENTIAL, rows));
    sections.push(Section::new(Part::Lines, 1, vec![Line::default()]));
    sections.push(Section::new(
        Part::Lines,
        ESSENTIAL,
        pack(shared_items(snap, st), width, width),
    ));
    if let Some(bytes) = &st.file_bytes {
        sections.push(Section::new(Part::Lines, 9, vec![file_line(bytes, width)]));
    }
    sections.push(Section::new(
        Part::Lines,
        6,
        vec![schedule_line(&st.schedule, width)],
    ));
    if let Some(message) = &st.message {
        let mut lines: Vec<Line<'static>> = wrap(&format!("» {}", clean(message)), width)
            .into_iter()
            .map(|l| Line::styled(l, Style::new().fg(Color::Yellow)))
            .collect();
        lines.truncate(MESSAGE_LINES);
        sections.push(Section::new(Part::Lines, 8, lines));
    } else {
        // An empty row keeps the panel from jumping when a message comes.
        sections.push(Section::new(Part::Lines, 0, vec![Line::default()]));
    }
    sections.push(Section::new(
        Part::Keys,
        7,
        vec![step_keys_line(snap, width)],
    ));
    sections
}

/// The settings a person stepping the sale cares about, most important
/// first; delays only when there are any.
fn step_settings(snap: &Snapshot) -> Vec<Vec<Span<'static>>> {
    let s = &snap.settings;
    let mut items = vec![
        pair("store", clean(&s.store)),
        pair("lock", clean(&s.lock)),
        pair("buyers", s.workers.to_string()),
        pair("tickets", s.tickets.to_string()),
        pair("seed", s.seed.to_string()),
    ];
    if s.wants != "1" {
        items.push(pair("wants", clean(&s.wants)));
    }
    items.extend(delay_pairs(s, false));
    if s.jitter {
        items.push(vec![Span::styled("jitter", Style::new().fg(Color::Cyan))]);
    }
    if snap.delay_factor != 1.0 {
        items.push(vec![Span::styled(
            factor_text(snap.delay_factor),
            Style::new().add_modifier(Modifier::BOLD),
        )]);
    }
    items
}

/// `text` as a full-width bar in the race's colour, wrapped if it must be.
fn banner(text: &str, width: u16) -> Vec<Line<'static>> {
    let style = alarm().add_modifier(Modifier::REVERSED);
    wrap(text, width.saturating_sub(2))
        .into_iter()
        .map(|l| {
            let pad = (width as usize).saturating_sub(l.chars().count() + 1);
            Line::styled(format!(" {l}{}", " ".repeat(pad)), style)
        })
        .collect()
}

/// What a step does, in a few words, for the rows that have room.
fn step_gloss(step: &str) -> Option<&'static str> {
    Some(match step {
        "search" => "looks at the count",
        "read" => "copies the count",
        "lock" => "takes the lock",
        "write" => "writes its copy − 1",
        "truncate" => "empties the file",
        "compare-and-swap" => "writes copy − 1 if count = copy",
        "unlock" => "releases the lock",
        "commit" => "ends its transaction",
        "update" => "count − 1 if count > 0",
        "request" => "asks the seller",
        "reply" => "reads the seller's answer",
        _ => return None,
    })
}

/// One buyer's row, as the panel shows it.
struct BuyerRow {
    selected: bool,
    number: String,
    next: String,
    next_style: Style,
    gloss: Option<&'static str>,
    /// The extra cells: "saw 1", "bought 1", "holds the lock" (empty when
    /// the buyer has none).
    cells: [String; 3],
}

/// The header of the extra cells' columns ("bought 1" and "holds the
/// lock" say what they are).
const CELL_HEADERS: [&str; 3] = ["its copy", "", ""];

fn cell_styles() -> [Style; 3] {
    [
        Style::new(),
        state_style(BuyerState::Bought),
        state_style(BuyerState::HoldingLock),
    ]
}

/// The column header (empty when there is no room for columns) and one
/// row per buyer: the selected marker, the buyer's number (from 1), its
/// next step, the count it saw, what it bought and whether it holds the
/// lock. Wide enough, the rows are a table (columns nobody has a value for
/// left out, the steps' glosses only when they still fit); narrower, each
/// row packs its cells and a long wait is said shortly.
fn buyer_rows(
    snap: &Snapshot,
    st: &Stepper,
    width: u16,
) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let plain = Style::new();
    let rows: Vec<BuyerRow> = st
        .buyers
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let next = clean(&b.next);
            let next_style = if b.can_step {
                Style::new().add_modifier(Modifier::BOLD)
            } else if next.starts_with("waits") {
                state_style(BuyerState::WaitingLock)
            } else {
                plain
            };
            let bought = snap.buyers.get(i).map_or(0, |c| c.bought);
            BuyerRow {
                selected: st.selected == i,
                number: (i + 1).to_string(),
                gloss: step_gloss(&next).filter(|_| b.can_step),
                next,
                next_style,
                cells: [
                    b.seen.map_or(String::new(), |v| format!("saw {v}")),
                    if bought > 0 {
                        format!("bought {bought}")
                    } else {
                        String::new()
                    },
                    if st.holder == Some(i) {
                        held(snap).to_string()
                    } else {
                        String::new()
                    },
                ],
            }
        })
        .collect();
    let mark_w = SELECTED.chars().count();
    let num_w = st.buyers.len().to_string().len().max("buyer".len());
    let cell_w: Vec<usize> = (0..3)
        .map(|c| {
            let widest = rows.iter().map(|r| r.cells[c].chars().count()).max();
            match widest {
                None | Some(0) => 0,
                Some(w) => w.max(CELL_HEADERS[c].len()),
            }
        })
        .collect();
    // The glosses line up in a column after the longest step name.
    let name_w = rows
        .iter()
        .filter(|r| r.gloss.is_some())
        .map(|r| r.next.chars().count())
        .max()
        .unwrap_or(0);
    let next_w = |gloss: bool, short: bool| -> usize {
        rows.iter()
            .map(|r| match r.gloss {
                Some(g) if gloss => name_w + 2 + g.chars().count(),
                _ if short => short_wait(&r.next).chars().count(),
                _ => r.next.chars().count(),
            })
            .max()
            .unwrap_or(0)
            .max("next step".len())
    };
    let cells_w: usize = cell_w.iter().filter(|&&w| w > 0).map(|w| w + 2).sum();
    let fits = |gloss: bool, short: bool| {
        mark_w + num_w + 2 + next_w(gloss, short) + cells_w <= width as usize
    };
    // The glosses go first, then the engine's long sentence for a wait.
    let Some((gloss, short)) = [(true, false), (false, false), (false, true)]
        .into_iter()
        .find(|&(gloss, short)| fits(gloss, short))
    else {
        return (Vec::new(), rows.iter().map(packed_row).collect());
    };
    let next_w = next_w(gloss, short);

    let mut header = vec![Span::styled(
        format!(
            "{:mark_w$}{:^num_w$}  {:<next_w$}",
            "", "buyer", "next step"
        ),
        plain,
    )];
    for (label, &w) in CELL_HEADERS.iter().zip(&cell_w) {
        if w > 0 {
            header.push(Span::styled(format!("  {label:<w$}"), plain));
        }
    }
    let lines = rows
        .iter()
        .map(|r| {
            let mut spans = row_start(r, num_w);
            let next = if short {
                short_wait(&r.next)
            } else {
                r.next.clone()
            };
            let mut used = next.chars().count();
            spans.push(Span::styled(next, r.next_style));
            if let Some(g) = r.gloss.filter(|_| gloss) {
                let pad = name_w + 2 - used;
                spans.push(Span::styled(format!("{:pad$}{g}", ""), plain));
                used = name_w + 2 + g.chars().count();
            }
            spans.push(Span::raw(" ".repeat(next_w.saturating_sub(used))));
            for ((text, &w), style) in r.cells.iter().zip(&cell_w).zip(cell_styles()) {
                if w > 0 {
                    spans.push(Span::raw("  "));
                    spans.push(Span::styled(format!("{text:<w$}"), style));
                }
            }
            trim_line(Line::from(spans))
        })
        .collect();
    (vec![trim_line(Line::from(header))], lines)
}

/// The marker and the number, centred in a column `num_w` wide.
fn row_start(r: &BuyerRow, num_w: usize) -> Vec<Span<'static>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let chosen = bold.fg(Color::Cyan);
    vec![
        if r.selected {
            Span::styled(SELECTED, chosen)
        } else {
            Span::raw(" ".repeat(SELECTED.chars().count()))
        },
        Span::styled(
            format!("{:^num_w$}", r.number),
            if r.selected { chosen } else { bold },
        ),
        Span::raw("  "),
    ]
}

/// A row for a narrow screen: no columns, the cells one after another.
fn packed_row(r: &BuyerRow) -> Line<'static> {
    let mut spans = row_start(r, r.number.len());
    spans.push(Span::styled(short_wait(&r.next), r.next_style));
    for (text, style) in r.cells.iter().zip(cell_styles()) {
        if !text.is_empty() {
            spans.push(Span::raw(SEP));
            spans.push(Span::styled(text.clone(), style));
        }
    }
    Line::from(spans)
}

/// "waits for buyer 1's lock" for the engine's longer sentence, which
/// narrow screens cannot fit beside the other cells; "<waiting> its update
/// would wait for buyer 1's uncommitted write" for a wait on a database's
/// row.
fn short_wait(next: &str) -> String {
    if let Some(holder) = next.strip_prefix("waits for the lock held by buyer ") {
        return format!("waits for buyer {holder}'s lock");
    }
    let row = next
        .strip_prefix("<waiting> its ")
        .and_then(|rest| rest.strip_suffix(" wrote and has not committed"))
        .and_then(|rest| rest.split_once(" would wait for the row buyer "));
    match row {
        Some((step, holder)) => {
            format!("<waiting> its {step} would wait for buyer {holder}'s {UNCOMMITTED}")
        }
        None => next.to_string(),
    }
}

/// Drops trailing blank spans, so a short row does not carry padding.
fn trim_line(mut line: Line<'static>) -> Line<'static> {
    while line
        .spans
        .last()
        .is_some_and(|s| s.content.trim().is_empty())
    {
        line.spans.pop();
    }
    if let Some(last) = line.spans.last_mut() {
        last.content = last.content.trim_end().to_string().into();
    }
    line
}

/// What the holder's cell says it holds. A database's `atomic` and
/// `serializable` take no lock up front: the buyer marked is the one whose
/// write is not committed yet.
fn held(snap: &Snapshot) -> &'static str {
    if snap.settings.commits {
        "has not committed"
    } else {
        "holds the lock"
    }
}

/// The shared state as whole items: the count, the sales, the lock.
fn shared_items(snap: &Snapshot, st: &Stepper) -> Vec<Vec<Span<'static>>> {
    let label = Style::new();
    let count_style = match st.count {
        Some(n) if n < 0 => alarm(),
        Some(_) => Style::new().add_modifier(Modifier::BOLD),
        None => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
    };
    let mut items = vec![
        vec![
            Span::styled("count ", label),
            Span::styled(remaining_text(st.count), count_style),
        ],
        vec![
            Span::styled("sold ", label),
            counter(
                format!("{} / {}", snap.sold, snap.settings.tickets),
                snap.oversold > 0,
            ),
        ],
    ];
    let lock = match st.holder {
        Some(h) if snap.settings.commits => vec![
            Span::styled(format!("{UNCOMMITTED} by "), label),
            Span::styled(
                format!("buyer {}", h + 1),
                state_style(BuyerState::HoldingLock),
            ),
        ],
        Some(h) => vec![
            Span::styled("lock ", label),
            Span::styled(
                format!("held by buyer {}", h + 1),
                state_style(BuyerState::HoldingLock),
            ),
        ],
        // These settings take no mutex at all.
        None if !snap.settings.mutex => {
            vec![Span::styled("no lock", label)]
        }
        None => vec![
            Span::styled("lock ", label),
            Span::styled("free", Style::new().add_modifier(Modifier::BOLD)),
        ],
    };
    items.push(lock);
    if let Some(n) = snap.retries {
        items.push(vec![
            Span::styled("retries ", label),
            Span::styled(n.to_string(), Style::new().add_modifier(Modifier::BOLD)),
        ]);
    }
    if snap.paused {
        items.push(vec![Span::styled(
            "PAUSED",
            Style::new()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )]);
    }
    if snap.finished {
        items.push(vec![Span::styled(
            "sale finished",
            Style::new().fg(Color::Green),
        )]);
    }
    items
}

/// The file store's bytes exactly, unquoted (they hold quotes of their
/// own), and an empty file mid-write (a torn read waiting to happen) as
/// `(empty)`, with a note as long as `width` allows.
fn file_line(bytes: &str, width: u16) -> Line<'static> {
    let label = Span::styled("file  ", Style::new());
    // The engine's word for a file it could not read is not the file's bytes.
    if bytes == "(unreadable)" {
        return Line::from(vec![
            label,
            Span::styled("unreadable", Style::new().fg(Color::Yellow)),
        ]);
    }
    if bytes.is_empty() {
        let mut line = Line::from(vec![
            label,
            Span::styled("(empty)", Style::new().fg(Color::Yellow)),
        ]);
        let notes = ["  mid-write: a read now finds no count", "  mid-write"];
        if let Some(note) = notes
            .into_iter()
            .find(|n| line.width() + n.chars().count() <= width as usize)
        {
            line.spans
                .push(Span::styled(note, Style::new().fg(Color::Yellow)));
        }
        return line;
    }
    Line::from(vec![
        label,
        Span::styled(
            visible_bytes(bytes),
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ])
}

/// `bytes` with control characters spelled out (`\n`), so every byte of
/// the file shows and nothing reaches the terminal raw.
fn visible_bytes(bytes: &str) -> String {
    bytes
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// "schedule 1,1,2 (3 steps)"; the newest steps kept when it is too long.
fn schedule_line(schedule: &str, width: u16) -> Line<'static> {
    let label = Span::styled("schedule ", Style::new());
    let schedule = clean(schedule);
    if schedule.is_empty() {
        return Line::from(vec![label, Span::styled("no steps yet", Style::new())]);
    }
    let steps = schedule.split(',').count();
    let note = format!(" ({})", crate::report::plural(steps as u64, "step"));
    let room = (width as usize).saturating_sub("schedule ".len());
    let len = schedule.chars().count();
    let mut spans = vec![label];
    if len <= room {
        spans.push(Span::styled(
            schedule,
            Style::new().add_modifier(Modifier::BOLD),
        ));
        if len + note.len() <= room {
            spans.push(Span::styled(note, Style::new()));
        }
    } else {
        let tail: String = schedule
            .chars()
            .skip(len - room.saturating_sub(1))
            .collect();
        spans.push(Span::styled(
            format!("…{tail}"),
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// Step mode's keys, spelled out when the line is wide enough.
fn step_keys_line(snap: &Snapshot, width: u16) -> Line<'static> {
    let key = Style::new().add_modifier(Modifier::BOLD);
    let pause = if snap.paused { "resume" } else { "pause" };
    let tiers: [(&[(&'static str, &'static str)], &'static str); 5] = [
        (
            &[
                ("1-9", "step"),
                ("↑↓/Tab", "select"),
                ("Enter", "step"),
                ("a", "run free"),
                ("u", "undo"),
                ("r", "restart"),
                ("s", "save"),
                ("p", pause),
                ("q", "quit"),
            ],
            SEP,
        ),
        (
            &[
                ("1-9", "step"),
                ("↑↓/Tab", "select"),
                ("Enter", "step"),
                ("a", "run free"),
                ("u", "undo"),
                ("r", "restart"),
                ("s", "save"),
                ("q", "quit"),
            ],
            SEP,
        ),
        (
            &[
                ("1-9", "step"),
                ("↑↓", "select"),
                ("Enter", "step"),
                ("a", "run free"),
                ("u", "undo"),
                ("r", "restart"),
                ("s", "save"),
                ("q", "quit"),
            ],
            SEP,
        ),
        (
            &[
                ("1-9", "step"),
                ("↑↓", "select"),
                ("a", "free"),
                ("u", "undo"),
                ("r", "restart"),
                ("s", "save"),
                ("q", "quit"),
            ],
            " ",
        ),
        (
            &[("1-9", "step"), ("a", "free"), ("u", "undo"), ("q", "quit")],
            " ",
        ),
    ];
    let build = |keys: &[(&'static str, &'static str)], gap: &'static str| {
        let mut spans = Vec::new();
        for (i, (k, what)) in keys.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw(gap));
            }
            spans.push(Span::styled(*k, key));
            spans.push(Span::raw(format!(" {what}")));
        }
        Line::from(spans)
    };
    let mut line = Line::default();
    for (keys, gap) in tiers {
        line = build(keys, gap);
        if line.width() <= width as usize {
            break;
        }
    }
    line
}

/// Word-wraps `text` to `width` columns; a word longer than a line is
/// broken where the line ends.
fn wrap(text: &str, width: u16) -> Vec<String> {
    let width = (width as usize).max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let line_len = line.chars().count();
        if line_len > 0 && line_len + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        while line.chars().count() + word.len() > width {
            let room = width - line.chars().count();
            line.extend(word.drain(..room));
            lines.push(std::mem::take(&mut line));
        }
        line.extend(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

// --------------------------------------------------------------- compact

/// The essentials as whole items, most important first.
fn compact_items(snap: &Snapshot) -> Vec<Vec<Span<'static>>> {
    let stale = if snap.count_stale { " (last read)" } else { "" };
    let mut items = vec![
        vec![Span::styled(
            format!("remaining {}{stale}", remaining_text(snap.remaining)),
            count_style(snap),
        )],
        // What is being shown: every size says which store and lock.
        vec![Span::raw(format!(
            "store {} lock {}",
            clean(&snap.settings.store),
            clean(&snap.settings.lock)
        ))],
        vec![Span::raw(format!(
            "sold {}/{}",
            snap.sold, snap.settings.tickets
        ))],
    ];
    let [oversold, _, lost] = <[Span<'static>; 3]>::try_from(race_spans(snap, "lost"))
        .unwrap_or_else(|_| unreachable!("race_spans returns three spans"));
    items.push(vec![oversold]);
    items.push(vec![lost]);
    items.push(vec![Span::raw(holder_item(snap, "lock"))]);
    items.push(vec![Span::raw(contention_text(snap, false))]);
    if snap.stopped {
        items.insert(
            2,
            vec![Span::styled("stopped", Style::new().fg(Color::Yellow))],
        );
    }
    if let Some(torn) = torn_text(snap, false) {
        items.push(vec![Span::raw(torn)]);
    }
    items.push(status_spans(snap));
    items.push(vec![Span::raw(elapsed_text(snap))]);
    items
}

// --------------------------------------------------------------- helpers

fn holder_item(snap: &Snapshot, lock_label: &str) -> String {
    crate::view::state::holder_item(
        snap.settings.commits,
        lock_label,
        snap.holder.map(|h| holder_text(Some(h))),
    )
}

/// What contention costs, in the waiting count's place: under --lock
/// atomic nobody waits for a lock, and the cost is the swaps that lost.
fn contention_text(snap: &Snapshot, narrow: bool) -> String {
    let base = contention_of_this_run(snap, narrow);
    // A shared database sale: what other runs bought since this run
    // began, apart from this run's figures.
    let base = match (snap.others, narrow) {
        (Some(n), true) => format!("{base} others {n}"),
        (Some(n), false) => format!("{base}  other runs {n}"),
        (None, _) => base,
    };
    // PostgreSQL names whom each waiting buyer waits for.
    match crate::view::state::waits_text(&snap.waits_for) {
        Some(waits) => format!("{base}{}{waits}", if narrow { " " } else { "  " }),
        None => base,
    }
}

fn contention_of_this_run(snap: &Snapshot, narrow: bool) -> String {
    // Under --lock serializable the cost is the transactions retried.
    if let Some(n) = snap.retries {
        return if narrow {
            format!("wait {} retry {n}", snap.waiting)
        } else {
            format!("waiting {}  retries {n}", snap.waiting)
        };
    }
    match (snap.failed_swaps, narrow) {
        (Some(n), true) => format!("swaps lost {n}"),
        (Some(n), false) => format!("failed swaps {n}"),
        (None, true) => format!("wait {}", snap.waiting),
        (None, false) => format!("waiting {}", snap.waiting),
    }
}

/// Greedily packs whole items into lines: the first line `first` columns
/// wide, the others `width`. An item wider than a line gets a line alone
/// (and is cut off when drawn).
fn pack(items: Vec<Vec<Span<'static>>>, first: u16, width: u16) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut used = 0usize;
    for item in items {
        let item_width: usize = item.iter().map(Span::width).sum();
        let limit = if lines.is_empty() { first } else { width } as usize;
        let needed = if current.is_empty() {
            item_width
        } else {
            used + SEP.len() + item_width
        };
        if !current.is_empty() && needed > limit {
            lines.push(Line::from(std::mem::take(&mut current)));
            used = 0;
        }
        if !current.is_empty() {
            current.push(Span::raw(SEP));
            used += SEP.len();
        }
        used += item_width;
        current.extend(item);
    }
    if !current.is_empty() {
        lines.push(Line::from(current));
    }
    lines
}

fn remaining_text(remaining: Option<i64>) -> String {
    match remaining {
        Some(n) => n.to_string(),
        None => "?".to_string(),
    }
}

/// "×1.5": one decimal unless a second one is needed (×0.25).
fn factor_text(factor: f64) -> String {
    let two = format!("{factor:.2}");
    let text = if two.ends_with('0') {
        format!("{factor:.1}")
    } else {
        two
    };
    format!("×{text}")
}

fn elapsed_text(snap: &Snapshot) -> String {
    let secs = snap.elapsed.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.2}s")
    } else {
        let whole = snap.elapsed.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Control characters would reach the terminal raw; show them harmlessly.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A 3×5 pixel font; each text row holds two pixel rows as half blocks.
fn font(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b001, 0b001, 0b001],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '?' => [0b111, 0b001, 0b011, 0b000, 0b010],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        _ => return None,
    })
}

/// Columns `big_lines(text)` needs: 3 per character, 1 between.
fn big_width(text: &str) -> u16 {
    let n = text.chars().count() as u16;
    (n * 4).saturating_sub(1)
}

/// `text` drawn three rows high in block characters; `None` if a character
/// has no glyph.
fn big_lines(text: &str) -> Option<[String; 3]> {
    let mut rows: [String; 3] = Default::default();
    for (i, c) in text.chars().enumerate() {
        let bits = font(c)?;
        for (r, row) in rows.iter_mut().enumerate() {
            if i > 0 {
                row.push(' ');
            }
            let top = bits[2 * r];
            let bottom = bits.get(2 * r + 1).copied().unwrap_or(0);
            for col in (0..3).rev() {
                row.push(match (top >> col & 1, bottom >> col & 1) {
                    (1, 1) => '█',
                    (1, 0) => '▀',
                    (0, 1) => '▄',
                    _ => ' ',
                });
            }
        }
    }
    Some(rows)
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::view::state::tests::snapshot;

    fn render_to(snap: &Snapshot, width: u16, height: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, snap)).unwrap();
        terminal.backend().buffer().clone()
    }

    fn text_of(buf: &Buffer) -> String {
        let area = buf.area;
        let mut out = String::new();
        for y in area.top()..area.bottom() {
            let mut line = String::new();
            for x in area.left()..area.right() {
                line.push_str(buf[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The first cell of the first occurrence of `needle` on screen.
    fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
        let text = text_of(buf);
        text.lines().enumerate().find_map(|(y, line)| {
            let byte = line.find(needle)?;
            Some((line[..byte].chars().count() as u16, y as u16))
        })
    }

    fn racy() -> Snapshot {
        let mut snap = snapshot(10, 1, 10, 0);
        snap.events = vec![
            "buyer 3 read 1".to_string(),
            "buyer 3 wrote 0".to_string(),
            "buyer 7 wrote 0 — overwrote buyer 3's sale".to_string(),
        ];
        snap
    }

    fn has_red(buf: &Buffer) -> bool {
        buf.content()
            .iter()
            .any(|c| c.fg == Color::Red || c.bg == Color::Red)
    }

    const RACY_80X24: &str = "\
store shm  lock none  buyers 10  tickets 1  wants 1  read 1ms  write 2ms    ×1.0
jitter  seed 42
┌─ remaining ─┐ ██████████████████████████ sold 10 / 1 █████████████████████████
│     █▀█     │ oversold 9  lost updates 9
│     █ █     │ lock: free  waiting 0
│     ▀▀▀     │ 8.0 purchases/s  elapsed 1.25s
└─────────────┘ race: concurrent writes overwrote sales
· not started  s searching  r reading  ~ waiting  L holds lock  W writing
$ bought  x sold out  - exited  ! crashed  ✗ sale overwritten
 1 $ $ $ $ $ $ $ $ $ $
buyer 3 read 1
buyer 3 wrote 0
buyer 7 wrote 0 — overwrote buyer 3's sale










q quit  p pause  + slower  - faster  sale finished
";

    /// A racy file-store sale under way: a stale write just overwrote
    /// buyer 3's sale, and the view's last read caught the file
    /// mid-rewrite, so the count is the last that parsed.
    fn racy_file_sale() -> Snapshot {
        let mut snap = snapshot(12, 20, 14, 9);
        snap.settings.store = "file".to_string();
        snap.settings.read_delay = "200ms".to_string();
        snap.settings.write_delay = "0".to_string();
        snap.settings.seed = 1_234_567_890;
        snap.finished = false;
        snap.count_stale = true;
        snap.torn_reads = 5;
        snap.elapsed = std::time::Duration::from_millis(2_400);
        snap.ops_per_sec = Some(14.0 / 2.4);
        let states = [
            BuyerState::Reading,
            BuyerState::Writing,
            BuyerState::Searching,
            BuyerState::Bought,
            BuyerState::Reading,
            BuyerState::Writing,
            BuyerState::Searching,
            BuyerState::Bought,
            BuyerState::NotStarted,
            BuyerState::Reading,
            BuyerState::Searching,
            BuyerState::Reading,
        ];
        for (cell, state) in snap.buyers.iter_mut().zip(states) {
            cell.state = state;
        }
        snap.buyers[2].lost_sale = true;
        snap.events = vec![
            "buyer 3 read 12".to_string(),
            "buyer 7 read 12".to_string(),
            "buyer 3 wrote 11".to_string(),
            "buyer 7 wrote 11 — overwrote buyer 3's sale".to_string(),
        ];
        snap
    }

    /// The same sale under --lock buy: buyer 5 holds the lock (and is
    /// writing inside it), four wait.
    fn locked_file_sale() -> Snapshot {
        let mut snap = snapshot(12, 20, 11, 9);
        snap.settings.store = "file".to_string();
        snap.settings.lock = "buy".to_string();
        snap.settings.read_delay = "200ms".to_string();
        snap.settings.write_delay = "0".to_string();
        snap.settings.seed = 1_234_567_890;
        snap.finished = false;
        snap.elapsed = std::time::Duration::from_millis(2_400);
        snap.ops_per_sec = Some(11.0 / 2.4);
        snap.holder = Some(4);
        snap.holder_pid = Some(4242);
        snap.waiting = 4;
        for (i, cell) in snap.buyers.iter_mut().enumerate() {
            cell.state = match i {
                4 => BuyerState::Writing,
                5..=8 => BuyerState::WaitingLock,
                _ => BuyerState::Searching,
            };
        }
        snap.events = vec![
            "buyer 4 read 10".to_string(),
            "buyer 4 wrote 9".to_string(),
            "buyer 5 read 9".to_string(),
        ];
        snap
    }

    /// The classroom's sizes, from a phone-sized pane to a projector.
    const SIZES: [(u16, u16); 5] = [(30, 10), (60, 15), (80, 24), (120, 40), (200, 60)];

    #[test]
    fn screens_at_every_size() {
        for (name, snap) in [
            ("racy_file", racy_file_sale()),
            ("locked_file", locked_file_sale()),
        ] {
            for (w, h) in SIZES {
                let text = text_of(&render_to(&snap, w, h));
                insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
            }
        }
    }

    #[test]
    fn every_size_keeps_store_lock_and_count() {
        for snap in [racy_file_sale(), locked_file_sale()] {
            for (w, h) in SIZES.into_iter().chain([(40, 9), (40, 12), (50, 10)]) {
                let text = text_of(&render_to(&snap, w, h));
                let flat = text.replace('\n', " ");
                assert!(flat.contains("file"), "{w}x{h}: no store\n{text}");
                assert!(
                    flat.contains(&snap.settings.lock),
                    "{w}x{h}: no lock\n{text}"
                );
                assert!(
                    flat.contains("remaining 9") || text.contains("remaining ─"),
                    "{w}x{h}: no count\n{text}"
                );
            }
        }
    }

    #[test]
    fn the_holder_is_marked_whatever_its_step() {
        let snap = locked_file_sale();
        let buf = render_to(&snap, 80, 24);
        let grid = plan(&snap, buf.area).grid;
        let row: String = (grid.left()..grid.right())
            .map(|x| buf[(x, grid.top())].symbol().to_string())
            .collect();
        // Buyer 5 is writing inside the lock: the grid shows it holding.
        assert!(row.starts_with(" 1 s s s s L ~ ~ ~ ~ s"), "{row}");
        let cell = &buf[(grid.left() + 11, grid.top())];
        assert!(cell.modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn an_overwritten_sale_is_marked_in_the_grid() {
        let snap = racy_file_sale();
        let buf = render_to(&snap, 80, 24);
        let grid = plan(&snap, buf.area).grid;
        let (x, y) = (grid.left() + 3 + 2 * 2, grid.top());
        assert_eq!(buf[(x, y)].symbol(), LOST_GLYPH.to_string());
        assert_eq!(buf[(x, y)].fg, Color::Red);
        let text = text_of(&buf);
        assert!(text.contains("✗ sale overwritten"), "{text}");
    }

    #[test]
    fn waiting_and_writing_differ_by_more_than_case() {
        let (waiting, writing) = (glyph(BuyerState::WaitingLock), glyph(BuyerState::Writing));
        assert_ne!(waiting.to_ascii_lowercase(), writing.to_ascii_lowercase());
    }

    #[test]
    fn a_stale_count_is_marked_and_keeps_the_box_width() {
        let mut snap = racy_file_sale();
        let width_of = |snap: &Snapshot| {
            let text = text_of(&render_to(snap, 80, 24));
            let line = text
                .lines()
                .find(|l| l.contains("remaining"))
                .unwrap_or_default()
                .to_string();
            line.find('┐').unwrap_or(0)
        };
        let stale = width_of(&snap);
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.contains("last read"), "{text}");
        assert!(text.contains("unreadable 5×"), "{text}");
        assert!(!text.contains('?'), "{text}");
        for remaining in [20, 9, 0] {
            snap.count_stale = false;
            snap.remaining = Some(remaining);
            assert_eq!(width_of(&snap), stale, "at {remaining}");
        }
        let plain = racy_file_sale().plain_line();
        assert!(plain.contains("remaining 9 (last read)"), "{plain}");
    }

    #[test]
    fn the_presentation_layout_draws_four_figures_taller_than_three_rows() {
        for (w, h) in [(120, 40), (200, 60)] {
            let snap = racy_file_sale();
            let buf = render_to(&snap, w, h);
            let text = text_of(&buf);
            for title in ["remaining", "sold / tickets", "oversold", "lost updates"] {
                assert!(text.contains(title), "{w}x{h}: {title}\n{text}");
            }
            // Full-block rows, one under another, at least five deep.
            let tallest = text
                .lines()
                .fold((0, 0), |(run, best), l| {
                    let run = if l.contains('█') { run + 1 } else { 0 };
                    (run, best.max(run))
                })
                .1;
            assert!(tallest >= 5, "{w}x{h}: {tallest} rows\n{text}");
        }
    }

    #[test]
    fn the_final_frame_after_a_stop_says_stopped() {
        let mut snap = locked_file_sale();
        snap.stopped = true;
        for (w, h) in SIZES {
            let text = text_of(&render_to(&snap, w, h));
            assert!(text.contains("stopped"), "{w}x{h}\n{text}");
            assert!(!text.contains("selling"), "{w}x{h}\n{text}");
        }
    }

    #[test]
    fn without_delays_the_speed_keys_say_why() {
        let mut snap = racy_file_sale();
        snap.settings.delays = false;
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.lines().next().unwrap().contains(NO_DELAYS), "{text}");
        assert!(!text.contains("+ slower"), "{text}");
    }

    #[test]
    fn labels_are_never_dark_grey() {
        for snap in [racy_file_sale(), locked_file_sale()] {
            for (w, h) in SIZES {
                let buf = render_to(&snap, w, h);
                let text = text_of(&buf);
                for label in ["store ", "lock ", "seed ", "remaining"] {
                    if let Some((x, y)) = find(&buf, label) {
                        assert_ne!(
                            buf[(x, y)].fg,
                            Color::DarkGray,
                            "{label} at {w}x{h}\n{text}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rates_keep_a_decimal_only_when_slow() {
        assert_eq!(rate_text(0.4), "0.4");
        assert_eq!(rate_text(8.0), "8.0");
        assert_eq!(rate_text(950.0), "950");
        assert_eq!(rate_text(46_297_394.4), "46.30M");
    }

    #[test]
    fn racy_sale_matches_the_full_screen() {
        let buf = render_to(&racy(), 80, 24);
        assert_eq!(text_of(&buf), RACY_80X24);
    }

    #[test]
    fn racy_sale_shows_oversold_and_lost_in_red() {
        let buf = render_to(&racy(), 80, 24);
        let (x, y) = find(&buf, "oversold 9").expect("oversold 9 on screen");
        assert_eq!(buf[(x, y)].fg, Color::Red);
        assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
        let (x, y) = find(&buf, "lost updates 9").expect("lost updates on screen");
        assert_eq!(buf[(x, y)].fg, Color::Red);
        let (x, y) = find(&buf, "overwrote").expect("the lost update event");
        assert_eq!(buf[(x, y)].fg, Color::Red);
    }

    #[test]
    fn correct_sale_shows_no_red() {
        let mut snap = snapshot(50, 5, 5, 0);
        snap.holder = Some(12);
        snap.events = vec!["buyer 4 bought 1".to_string()];
        let buf = render_to(&snap, 80, 24);
        let text = text_of(&buf);
        assert!(text.contains("oversold 0"), "{text}");
        assert!(text.contains("lost updates 0"), "{text}");
        assert!(text.contains("lock: buyer 13"), "{text}");
        assert!(!has_red(&buf), "{text}");
    }

    #[test]
    fn a_free_mutex_shows_as_free_and_no_mutex_as_none() {
        // The queue store's lock setting is `none`, yet its buyers take the
        // mutex around the pipe: the step screen follows the rule, not the
        // setting's name.
        let mut snap = stepping();
        snap.holder = None;
        snap.stepper.as_mut().unwrap().holder = None;
        snap.settings.store = "queue".to_string();
        snap.settings.lock = "none".to_string();
        snap.settings.mutex = true;
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(
            text.contains("lock free") && !text.contains("no lock"),
            "{text}"
        );
        snap.settings.mutex = false;
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.contains("no lock"), "{text}");
    }

    #[test]
    fn failed_swaps_show_beside_the_lock_only_when_counted() {
        let mut snap = snapshot(5, 1, 1, 0);
        snap.settings.lock = "atomic".to_string();
        snap.failed_swaps = Some(4);
        for width in [80, 50] {
            let text = text_of(&render_to(&snap, width, 24));
            assert!(
                text.lines()
                    .any(|l| l.contains("lock") && l.contains(" 4") && l.contains("swaps")),
                "{text}"
            );
        }
        // The tiniest layout too, in the waiting count's place.
        let text = text_of(&render_to(&snap, 30, 10));
        assert!(text.contains("failed swaps 4"), "{text}");
        assert!(!text.contains("waiting"), "{text}");
        snap.failed_swaps = None;
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(!text.contains("swaps"), "{text}");
    }

    #[test]
    fn whom_a_waiting_buyer_waits_for_is_named() {
        let mut snap = snapshot(5, 1, 1, 0);
        snap.settings.store = "postgres".to_string();
        snap.waits_for = vec![(1, Some(0)), (2, None)];
        let text = text_of(&render_to(&snap, 120, 40));
        assert!(text.contains("waits 2→1 3→another run"), "{text}");
        assert!(snap.plain_line().contains("waits 2→1 3→another run"));
    }

    #[test]
    fn other_runs_purchases_show_apart_in_every_layout() {
        let mut snap = snapshot(5, 1, 1, 0);
        snap.settings.store = "postgres".to_string();
        snap.others = Some(4);
        for (w, h) in [(80, 24), (50, 24), (30, 10), (120, 40)] {
            let text = text_of(&render_to(&snap, w, h));
            assert!(
                text.contains("other runs 4") || text.contains("others 4"),
                "{w}x{h}:\n{text}"
            );
        }
        snap.others = None;
        assert!(!text_of(&render_to(&snap, 80, 24)).contains("other"));
    }

    #[test]
    fn retries_show_beside_the_waiting_count_under_serializable() {
        let mut snap = snapshot(5, 1, 1, 0);
        snap.settings.lock = "serializable".to_string();
        snap.retries = Some(7);
        for (width, height) in [(80, 24), (50, 24), (30, 10)] {
            let text = text_of(&render_to(&snap, width, height));
            assert!(text.contains("retr"), "{width}x{height}: {text}");
        }
        snap.retries = None;
        assert!(!text_of(&render_to(&snap, 80, 24)).contains("retries"));
    }

    #[test]
    fn a_sqlite_legend_says_waiting_is_for_the_database() {
        // A busy wait shows as waiting: the legend names what is waited for.
        let mut snap = snapshot(3, 5, 1, 4);
        snap.buyers[1].state = BuyerState::WaitingLock;
        snap.settings.store = "sqlite".to_string();
        let text = text_of(&render_to(&snap, 120, 30));
        assert!(text.contains("~ waits for the database"), "{text}");
        snap.settings.store = "shm".to_string();
        let text = text_of(&render_to(&snap, 120, 30));
        assert!(!text.contains("waits for the database"), "{text}");
        assert!(text.contains("~ waiting"), "{text}");
    }

    #[test]
    fn a_database_atomic_header_shows_one_round_trip_not_a_read() {
        // Its one conditional UPDATE reads nothing first: both delays are
        // spent before it, and the header says so.
        let mut snap = snapshot(5, 2, 0, 2);
        snap.settings.store = "sqlite".to_string();
        snap.settings.lock = "atomic".to_string();
        snap.settings.read_delay = "10s".to_string();
        snap.settings.write_delay = "0".to_string();
        snap.settings.round_trip = true;
        let text = text_of(&render_to(&snap, 100, 24));
        assert!(text.contains("round trip 10s"), "{text}");
        assert!(!text.contains("read 10s"), "{text}");
        assert!(!text.contains("write 0"), "{text}");
        snap.settings.write_delay = "20ms".to_string();
        let text = text_of(&render_to(&snap, 100, 24));
        assert!(text.contains("round trip 10s+20ms"), "{text}");
        // Every other sale keeps its read and its write.
        snap.settings.round_trip = false;
        let text = text_of(&render_to(&snap, 100, 24));
        assert!(
            text.contains("read 10s") && text.contains("write 20ms"),
            "{text}"
        );
    }

    #[test]
    fn a_database_atomic_grid_shows_the_update_in_flight_and_the_uncommitted_write() {
        // No lock is taken: buyer 2's write is uncommitted, buyer 3's
        // conditional update is on its way. Neither is a search or a lock.
        let mut snap = snapshot(3, 5, 1, 4);
        snap.settings.store = "sqlite".to_string();
        snap.settings.lock = "atomic".to_string();
        snap.settings.round_trip = true;
        snap.settings.commits = true;
        snap.settings.mutex = false;
        snap.finished = false;
        snap.buyers[1].state = BuyerState::Writing;
        snap.buyers[2].state = BuyerState::InFlight;
        snap.holder = Some(1);
        for (w, h) in [(80, 24), (120, 40)] {
            let text = text_of(&render_to(&snap, w, h));
            for want in [
                "> update in flight",
                "U uncommitted write",
                "uncommitted write: buyer 2",
            ] {
                assert!(text.contains(want), "{want:?} at {w}x{h}:\n{text}");
            }
            assert!(!text.contains("holds lock"), "{text}");
            assert!(!text.contains("lock: "), "{text}");
        }
        let compact = text_of(&render_to(&snap, 36, 8));
        assert!(compact.contains("uncommitted write buyer 2"), "{compact}");
        snap.holder = None;
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.contains("uncommitted write: none"), "{text}");
        // Every other sale keeps its lock, and no legend entry for a round
        // trip it does not make.
        snap.settings.round_trip = false;
        snap.settings.commits = false;
        snap.buyers[2].state = BuyerState::Searching;
        snap.holder = Some(1);
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.contains("L holds lock"), "{text}");
        assert!(text.contains("lock: buyer 2"), "{text}");
        assert!(!text.contains("in flight"), "{text}");
    }

    #[test]
    fn header_shows_settings_factor_and_pause() {
        let mut snap = snapshot(50, 5, 5, 0);
        snap.paused = true;
        snap.delay_factor = 1.5;
        let text = text_of(&render_to(&snap, 120, 30));
        let header = text.lines().next().unwrap();
        for want in [
            "store shm",
            "lock none",
            "buyers 50",
            "tickets 5",
            "read 1ms",
            "write 2ms",
            "jitter",
            "seed 42",
            "×1.5",
            "PAUSED",
        ] {
            assert!(header.contains(want), "{want:?} missing from {header:?}");
        }
        assert!(text.contains("p resume"), "{text}");
    }

    #[test]
    fn thousand_buyers_fit_on_80x24() {
        let mut snap = snapshot(1000, 100, 100, 0);
        for (i, cell) in snap.buyers.iter_mut().enumerate() {
            cell.state = STATES[i % STATES.len()];
        }
        snap.holder = Some(4);
        snap.finished = false;
        let buf = render_to(&snap, 80, 24);
        let grid = plan(&snap, buf.area).grid;
        let glyphs: Vec<char> = STATES.iter().map(|s| glyph(*s)).collect();
        let mut count = 0;
        for y in grid.top()..grid.bottom() {
            for x in grid.left()..grid.right() {
                let sym = buf[(x, y)].symbol();
                if sym.chars().count() == 1 && glyphs.contains(&sym.chars().next().unwrap()) {
                    count += 1;
                }
            }
        }
        assert_eq!(count, 1000, "{}", text_of(&buf));
        let text = text_of(&buf);
        assert!(
            text.contains("q quit  p pause  + slower  - faster"),
            "{text}"
        );
        assert!(text.contains("remaining"), "{text}");
        assert!(text.contains("seed 42"), "{text}");
    }

    #[test]
    fn grid_glyphs_carry_their_state_colour() {
        let mut snap = snapshot(3, 1, 0, 1);
        snap.buyers[1].state = BuyerState::HoldingLock;
        let buf = render_to(&snap, 80, 24);
        let grid = plan(&snap, buf.area).grid;
        let row: String = (grid.left()..grid.right())
            .map(|x| buf[(x, grid.top())].symbol().to_string())
            .collect();
        assert_eq!(row.trim_end(), "1 - L -");
        assert_eq!(buf[(grid.left() + 4, grid.top())].fg, Color::Magenta);
    }

    #[test]
    fn zero_tickets_and_unknown_count_do_not_panic() {
        let mut snap = snapshot(5, 0, 3, 0);
        snap.remaining = None;
        snap.lost_updates = None;
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.contains("sold 3 / 0"), "{text}");
        assert!(text.contains("lost updates ?"), "{text}");
    }

    #[test]
    fn negative_remaining_is_drawn_big() {
        let snap = snapshot(10, 1, 10, -3);
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.contains("▀▀▀ ▀▀█"), "{text}");
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let mut racy = racy();
        racy.paused = true;
        let many = snapshot(1000, 10, 10, 0);
        let none = snapshot(0, 0, 0, 0);
        for snap in [&racy, &many, &none] {
            for (w, h) in [
                (0, 0),
                (1, 1),
                (10, 3),
                (80, 1),
                (80, 0),
                (20, 5),
                (39, 30),
                (40, 9),
                (41, 10),
                (200, 9),
                (1, 100),
                (300, 80),
            ] {
                let buf = render_to(snap, w, h);
                assert_eq!(buf.area, Rect::new(0, 0, w, h));
            }
        }
    }

    #[test]
    fn compact_layout_keeps_the_essentials() {
        let text = text_of(&render_to(&racy(), 20, 5));
        assert!(text.starts_with("remaining 0\n"), "{text}");
        assert!(text.contains("oversold 9"), "{text}");
        assert!(text.contains("lost 9"), "{text}");
    }

    #[test]
    fn events_show_the_newest_last() {
        let mut snap = snapshot(1000, 100, 100, 0);
        snap.events = (0..50).map(|i| format!("event {i}")).collect();
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.contains("event 49\n"), "{text}");
        assert!(!text.contains("event 0\n"), "{text}");
    }

    #[test]
    fn preferred_height_shows_everything() {
        let mut snap = snapshot(1000, 100, 100, 0);
        snap.events = (0..50).map(|i| format!("event {i}")).collect();
        let height = preferred_height(&snap, 80);
        let buf = render_to(&snap, 80, height);
        let p = plan(&snap, buf.area);
        assert!(p.grid.height as usize * p.grid_format.per_row as usize >= 1000);
        assert_eq!(p.events.height as usize, FINAL_EVENTS);
    }

    #[test]
    fn factor_text_keeps_needed_decimals() {
        assert_eq!(factor_text(1.0), "×1.0");
        assert_eq!(factor_text(1.5), "×1.5");
        assert_eq!(factor_text(0.25), "×0.25");
    }

    #[test]
    fn control_characters_are_not_drawn() {
        let mut snap = racy();
        snap.events.push("evil \x1b[2J".to_string());
        let buf = render_to(&snap, 80, 24);
        assert!(buf.content().iter().all(|c| !c.symbol().contains('\x1b')));
    }

    // ------------------------------------------------------- step mode

    use crate::view::state::{StepCell, Stepper};

    fn cell(next: &str, can_step: bool, seen: Option<i64>) -> StepCell {
        StepCell {
            next: next.to_string(),
            can_step,
            seen,
        }
    }

    /// Two buyers under `--lock buy`: buyer 1 searched and took the lock,
    /// buyer 2 searched and now waits for it; the person just pressed 2.
    fn stepping() -> Snapshot {
        let mut snap = snapshot(2, 1, 0, 1);
        snap.settings.lock = "buy".to_string();
        snap.settings.mutex = true;
        snap.settings.jitter = false;
        snap.settings.seed = 1;
        snap.finished = false;
        snap.holder = Some(0);
        snap.stepper = Some(Stepper {
            buyers: vec![
                cell("read", true, None),
                cell("waits for the lock held by buyer 1", false, Some(1)),
            ],
            selected: 0,
            count: Some(1),
            file_bytes: None,
            holder: Some(0),
            schedule: "1,1,2".to_string(),
            challenge:
                "Challenge: sell more than 1 ticket — make the sale oversell (can you, under this lock?)"
                    .to_string(),
            achieved: None,
            message: Some("buyer 2 waits for the lock held by buyer 1".to_string()),
        });
        snap
    }

    /// Two buyers, no lock, both bought the one ticket: 1,1,2,2,2,1.
    fn oversold() -> Snapshot {
        let mut snap = snapshot(2, 1, 2, 0);
        snap.settings.jitter = false;
        snap.settings.seed = 1;
        snap.stepper = Some(Stepper {
            buyers: vec![
                cell("finished", false, Some(1)),
                cell("finished", false, Some(1)),
            ],
            selected: 1,
            count: Some(0),
            file_bytes: None,
            holder: None,
            schedule: "1,1,2,2,2,1".to_string(),
            challenge: "Challenge: sell more than 1 ticket — make the sale oversell".to_string(),
            achieved: Some("1,1,2,2,2,1".to_string()),
            message: None,
        });
        snap
    }

    #[test]
    fn a_serializable_step_panel_speaks_of_commits_not_locks() {
        // Buyer 1 wrote and has not committed; buyer 2's write waits for
        // that commit. Nothing here took a lock up front.
        let mut snap = stepping();
        snap.settings.store = "sqlite".to_string();
        snap.settings.lock = "serializable".to_string();
        snap.settings.mutex = false;
        snap.settings.commits = true;
        snap.retries = Some(1);
        let st = stepper_of(&mut snap);
        st.buyers = vec![
            cell("commit", true, Some(1)),
            cell(
                "<waiting> its write would wait for the row buyer 1 wrote and has not committed",
                false,
                Some(1),
            ),
        ];
        st.message = Some(
            "buyer 2 <waiting> its write would wait for the row buyer 1 wrote and has not committed"
                .to_string(),
        );
        let text = text_of(&render_to(&snap, 140, 24));
        for want in [
            "commit  ends its transaction",
            "has not committed",
            "uncommitted write by buyer 1",
            "retries 1",
        ] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
        assert!(!text.contains("lock held"), "{text}");
        assert!(!text.contains("holds the lock"), "{text}");
        assert!(!text.contains("releases the lock"), "{text}");
    }

    #[test]
    fn a_wait_for_a_row_reads_whole_at_80_columns() {
        // The engine's sentence does not fit beside the other cells at 80
        // columns: it is said shortly, never cut off.
        let mut snap = stepping();
        snap.settings.store = "sqlite".to_string();
        snap.settings.lock = "atomic".to_string();
        snap.settings.mutex = false;
        snap.settings.commits = true;
        let st = stepper_of(&mut snap);
        st.buyers = vec![
            cell("commit", true, Some(1)),
            cell(
                "<waiting> its update would wait for the row buyer 1 wrote and has not committed",
                false,
                Some(1),
            ),
        ];
        st.holder = Some(0);
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(
            text.contains("<waiting> its update would wait for buyer 1's uncommitted write"),
            "{text}"
        );
        assert!(!text.contains("the row buyer 1"), "{text}");
    }

    fn stepper_of(snap: &mut Snapshot) -> &mut Stepper {
        snap.stepper.as_mut().expect("a step-mode snapshot")
    }

    const STEPPING_80X24: &str = "\
Challenge: sell more than 1 ticket — make the sale oversell (can you, under this
lock?)
store shm  lock buy  buyers 2  tickets 1  seed 42  read 1ms  write 2ms

  buyer  next step                           its copy
▶   1    read  copies the count                        holds the lock
    2    waits for the lock held by buyer 1  saw 1

count 1  sold 0 / 1  lock held by buyer 1
schedule 1,1,2 (3 steps)
» buyer 2 waits for the lock held by buyer 1












1-9 step  ↑↓ select  Enter step  a run free  u undo  r restart  s save  q quit
";

    #[test]
    fn step_panel_matches_the_full_screen() {
        let mut snap = stepping();
        snap.settings.seed = 42;
        let buf = render_to(&snap, 80, 24);
        assert_eq!(text_of(&buf), STEPPING_80X24);
    }

    /// Every essential of the panel is on a screen this size.
    fn assert_essentials(text: &str, waits: &str) {
        for want in [
            "Challenge: sell more than 1 ticket",
            "read",
            waits,
            "count 1",
            "lock held by buyer 1",
        ] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
    }

    #[test]
    fn step_panel_at_80x24_shows_every_part() {
        let buf = render_to(&stepping(), 80, 24);
        let text = text_of(&buf);
        assert_essentials(&text, "waits for the lock held by buyer 1");
        for want in [
            "▶   1",
            "saw 1",
            "holds the lock",
            "schedule 1,1,2",
            "» buyer 2 waits for the lock held by buyer 1",
            "1-9 step",
            "Enter step",
            "a run free",
            "u undo",
            "r restart",
            "s save",
            "q quit",
        ] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
        // The keys sit on the last row, as on the normal screen.
        assert!(
            text.lines().nth(23).unwrap().starts_with("1-9 step"),
            "{text}"
        );
        // The lock holder and the waiting buyer carry the grid's colours.
        let (x, y) = find(&buf, "holds the lock").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Magenta);
        let (x, y) = find(&buf, "waits for the lock").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Yellow);
        // Nothing has gone wrong yet: no red.
        assert!(!has_red(&buf), "{text}");
    }

    #[test]
    fn step_panel_at_60x15_keeps_the_table() {
        let text = text_of(&render_to(&stepping(), 60, 15));
        assert_essentials(&text, "waits for buyer 1's lock");
        for want in ["holds the lock", "saw 1", "schedule 1,1,2", "q quit"] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
    }

    #[test]
    fn step_panel_at_40x12_keeps_the_essentials() {
        let text = text_of(&render_to(&stepping(), 40, 12));
        assert_essentials(&text, "waits for buyer 1's lock");
        assert!(text.contains("▶ 1  read  holds the lock"), "{text}");
        assert!(text.contains("q quit"), "{text}");
        let mut snap = oversold();
        stepper_of(&mut snap).file_bytes = Some(String::new());
        let text = text_of(&render_to(&snap, 40, 12));
        for number in ['1', '2'] {
            assert!(
                text.lines().any(|l| l.contains("finished")
                    && l[..l.find("finished").unwrap()]
                        .trim_start_matches(['▶', ' '])
                        .starts_with(number)),
                "buyer {number} missing:\n{text}"
            );
        }
        for want in [
            "Oversold! schedule: 1,1,2,2,2,1",
            "count 0",
            "no lock",
            "file  (empty)",
        ] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
    }

    #[test]
    fn oversold_banner_is_red_at_every_size() {
        for (w, h) in [(80, 24), (60, 15), (40, 12)] {
            let buf = render_to(&oversold(), w, h);
            let text = text_of(&buf);
            let (x, y) = find(&buf, "Oversold! schedule: 1,1,2,2,2,1")
                .unwrap_or_else(|| panic!("no banner at {w}x{h}:\n{text}"));
            assert_eq!(buf[(x, y)].fg, Color::Red, "{w}x{h}");
            assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
            // The bar spans the row.
            assert_eq!(buf[(w - 1, y)].fg, Color::Red, "{w}x{h}");
            assert!(text.contains("sold 2 / 1"), "{text}");
        }
    }

    #[test]
    fn buyers_are_numbered_from_one() {
        let text = text_of(&render_to(&oversold(), 80, 24));
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("bought 1")).collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(rows[0].starts_with("    1 "), "{text}");
        // The selected buyer (index 1) is buyer 2.
        assert!(rows[1].starts_with("▶   2 "), "{text}");
        assert!(rows[1].contains("bought 1"), "{text}");
    }

    #[test]
    fn file_bytes_show_exactly_and_empty_shows_as_empty() {
        let mut snap = stepping();
        stepper_of(&mut snap).file_bytes = Some("{\"count\":1}".to_string());
        let text = text_of(&render_to(&snap, 80, 24));
        assert!(text.contains("file  {\"count\":1}"), "{text}");
        // Between the truncate and the write: a torn read waiting to happen.
        let st = stepper_of(&mut snap);
        st.file_bytes = Some(String::new());
        st.count = None;
        let buf = render_to(&snap, 80, 24);
        let text = text_of(&buf);
        assert!(
            text.contains("file  (empty)  mid-write: a read now finds no count"),
            "{text}"
        );
        assert!(text.contains("count ?"), "{text}");
        // A newline or an escape in the file is spelled out, not sent.
        stepper_of(&mut snap).file_bytes = Some("{\"count\":1}\n\x1b".to_string());
        let buf = render_to(&snap, 80, 24);
        assert!(
            text_of(&buf).contains(r#"file  {"count":1}\n\u{1b}"#),
            "{}",
            text_of(&buf)
        );
        assert!(buf.content().iter().all(|c| !c.symbol().contains('\x1b')));
    }

    #[test]
    fn many_buyers_scroll_to_the_selected_one() {
        let mut snap = snapshot(100, 1, 0, 1);
        snap.stepper = Some(Stepper {
            buyers: (0..100).map(|_| cell("search", true, None)).collect(),
            selected: 57,
            count: Some(1),
            challenge: "Challenge: sell more than 1 ticket".to_string(),
            ..Stepper::default()
        });
        for (w, h) in [(80, 24), (60, 15), (40, 12)] {
            let text = text_of(&render_to(&snap, w, h));
            let selected = text.lines().find(|l| l.starts_with('▶'));
            assert!(
                selected.is_some_and(|l| l[SELECTED.len()..].trim_start().starts_with("58 ")),
                "{w}x{h}:\n{text}"
            );
            assert!(text.contains(" of 100 shown"), "{w}x{h}:\n{text}");
            assert!(text.contains("count 1"), "{w}x{h}:\n{text}");
        }
    }

    #[test]
    fn step_panel_on_tiny_terminals_does_not_panic() {
        let mut empty = snapshot(0, 0, 0, 0);
        empty.stepper = Some(Stepper::default());
        for snap in [stepping(), oversold(), empty] {
            for (w, h) in [
                (0, 0),
                (1, 1),
                (10, 3),
                (80, 1),
                (20, 5),
                (39, 30),
                (300, 80),
            ] {
                let buf = render_to(&snap, w, h);
                assert_eq!(buf.area, Rect::new(0, 0, w, h));
            }
        }
    }

    #[test]
    fn step_panel_final_frame_has_room_for_everything() {
        let snap = oversold();
        let height = preferred_height(&snap, 80);
        let text = text_of(&render_to(&snap, 80, height));
        assert!(text.contains("Oversold! schedule: 1,1,2,2,2,1"), "{text}");
        assert!(text.contains("schedule 1,1,2,2,2,1 (6 steps)"), "{text}");
        assert!(text.contains("store shm"), "{text}");
        assert!(
            text.lines().last().unwrap().starts_with("1-9 step"),
            "{text}"
        );
    }

    #[test]
    fn a_long_schedule_keeps_its_newest_steps() {
        let schedule = vec!["1"; 60].join(",") + ",2";
        let line = schedule_line(&schedule, 40);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert!(text.starts_with("schedule …"), "{text}");
        assert!(text.ends_with(",1,2"), "{text}");
        assert_eq!(line.width(), 40);
    }

    #[test]
    fn wrap_breaks_at_spaces_and_inside_long_words() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), [""]);
    }
}
