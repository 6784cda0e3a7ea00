//! One log line with ANSI escape sequences → escaped HTML: SGR colours and bold, italic and
//! underline become `<span>`s with classes (or an inline colour for 256-colour and RGB
//! codes); every other escape sequence and control character is dropped; all text is
//! HTML-escaped. A carriage return keeps what was written after it (progress bars).

/// The style in force.
#[derive(Debug, Clone, Default, PartialEq)]
struct Style {
    bold: bool,
    faint: bool,
    italic: bool,
    underline: bool,
    fg: Option<Colour>,
    bg: Option<Colour>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Colour {
    /// One of the 16 named colours (8–15 bright).
    Named(u8),
    Rgb(u8, u8, u8),
}

pub fn to_html(line: &str) -> String {
    let line = after_carriage_return(line);
    let mut out = String::with_capacity(line.len() + 16);
    let mut style = Style::default();
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                let seq = escape_sequence(&mut chars);
                if let Some(params) = seq {
                    flush(&mut out, &mut text, &style);
                    apply(&mut style, &params);
                }
            }
            '\t' => text.push(c),
            c if c.is_control() => {}
            c => text.push(c),
        }
    }
    flush(&mut out, &mut text, &style);
    out
}

fn after_carriage_return(line: &str) -> &str {
    let line = line.strip_suffix('\r').unwrap_or(line);
    line.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("")
}

/// Consumes one escape sequence after ESC; the parameters of an SGR (`ESC [ … m`), `None`
/// for anything else.
fn escape_sequence(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<Vec<u16>> {
    match chars.next() {
        Some('[') => {
            let mut body = String::new();
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    return (c == 'm').then(|| {
                        body.split([';', ':'])
                            .map(|p| p.parse::<u16>().unwrap_or(0))
                            .collect()
                    });
                }
                body.push(c);
            }
            None
        }
        // OSC (titles, hyperlinks): up to BEL or ESC \.
        Some(']') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                    break;
                }
            }
            None
        }
        _ => None,
    }
}

fn apply(style: &mut Style, params: &[u16]) {
    let mut i = 0;
    while i < params.len() {
        match params[i] {
            0 => *style = Style::default(),
            1 => style.bold = true,
            2 => style.faint = true,
            3 => style.italic = true,
            4 => style.underline = true,
            22 => (style.bold, style.faint) = (false, false),
            23 => style.italic = false,
            24 => style.underline = false,
            p @ 30..=37 => style.fg = Some(Colour::Named((p - 30) as u8)),
            p @ 90..=97 => style.fg = Some(Colour::Named((p - 90 + 8) as u8)),
            39 => style.fg = None,
            p @ 40..=47 => style.bg = Some(Colour::Named((p - 40) as u8)),
            p @ 100..=107 => style.bg = Some(Colour::Named((p - 100 + 8) as u8)),
            49 => style.bg = None,
            p @ (38 | 48) => {
                let (colour, used) = extended(&params[i + 1..]);
                if p == 38 {
                    style.fg = colour;
                } else {
                    style.bg = colour;
                }
                i += used;
            }
            _ => {}
        }
        i += 1;
    }
}

/// `5;n` (256 colours) or `2;r;g;b`; the colour and how many parameters it took.
fn extended(rest: &[u16]) -> (Option<Colour>, usize) {
    let byte = |v: u16| v.min(255) as u8;
    match rest {
        [5, n, ..] => (Some(palette(byte(*n))), 2),
        [2, r, g, b, ..] => (Some(Colour::Rgb(byte(*r), byte(*g), byte(*b))), 4),
        _ => (None, rest.len()),
    }
}

fn palette(n: u8) -> Colour {
    match n {
        0..=15 => Colour::Named(n),
        16..=231 => {
            let v = |x: u8| if x == 0 { 0 } else { 55 + x * 40 };
            let n = n - 16;
            Colour::Rgb(v(n / 36), v(n / 6 % 6), v(n % 6))
        }
        _ => {
            let g = 8 + (n - 232) * 10;
            Colour::Rgb(g, g, g)
        }
    }
}

fn flush(out: &mut String, text: &mut String, style: &Style) {
    if text.is_empty() {
        return;
    }
    if *style == Style::default() {
        escape_into(out, text);
    } else {
        let mut classes = Vec::new();
        let mut css = String::new();
        for (on, class) in [
            (style.bold, "ansi-bold"),
            (style.faint, "ansi-faint"),
            (style.italic, "ansi-italic"),
            (style.underline, "ansi-underline"),
        ] {
            if on {
                classes.push(class.to_string());
            }
        }
        for (colour, kind) in [(style.fg, "fg"), (style.bg, "bg")] {
            match colour {
                Some(Colour::Named(n)) => classes.push(format!("ansi-{kind}-{n}")),
                Some(Colour::Rgb(r, g, b)) => {
                    let prop = if kind == "fg" {
                        "color"
                    } else {
                        "background-color"
                    };
                    css.push_str(&format!("{prop}:#{r:02x}{g:02x}{b:02x};"));
                }
                None => {}
            }
        }
        out.push_str("<span");
        if !classes.is_empty() {
            out.push_str(&format!(" class=\"{}\"", classes.join(" ")));
        }
        if !css.is_empty() {
            out.push_str(&format!(" style=\"{css}\""));
        }
        out.push('>');
        escape_into(out, text);
        out.push_str("</span>");
    }
    text.clear();
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The line without escape sequences and control characters, as plain text.
pub fn strip(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = after_carriage_return(line).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                escape_sequence(&mut chars);
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(
            to_html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn colours_and_bold_become_classes() {
        assert_eq!(
            to_html("\u{1b}[1;31merror\u{1b}[0m: done"),
            "<span class=\"ansi-bold ansi-fg-1\">error</span>: done"
        );
        assert_eq!(
            to_html("\u{1b}[92mok\u{1b}[39m"),
            "<span class=\"ansi-fg-10\">ok</span>"
        );
        assert_eq!(
            to_html("\u{1b}[44m bg \u{1b}[49m"),
            "<span class=\"ansi-bg-4\"> bg </span>"
        );
    }

    #[test]
    fn extended_colours_become_inline_styles_of_hex_digits() {
        assert_eq!(
            to_html("\u{1b}[38;2;255;0;128mpink"),
            "<span style=\"color:#ff0080;\">pink</span>"
        );
        assert_eq!(
            to_html("\u{1b}[38;5;196mred"),
            "<span style=\"color:#ff0000;\">red</span>"
        );
        assert_eq!(
            to_html("\u{1b}[38;5;3my"),
            "<span class=\"ansi-fg-3\">y</span>"
        );
    }

    #[test]
    fn escaped_text_inside_a_colour_stays_escaped() {
        assert_eq!(
            to_html("\u{1b}[31m<b>\"&\u{1b}[0m"),
            "<span class=\"ansi-fg-1\">&lt;b&gt;&quot;&amp;</span>"
        );
    }

    #[test]
    fn other_sequences_and_control_characters_are_dropped() {
        assert_eq!(to_html("a\u{1b}[2Kb\u{1b}[1Ac"), "abc");
        assert_eq!(to_html("\u{1b}]0;title\u{7}text"), "text");
        assert_eq!(to_html("\u{1b}]8;;http://x\u{1b}\\link"), "link");
        assert_eq!(to_html("bell\u{7}\u{0}nul\ttab"), "bellnul\ttab");
        // A cut-off sequence at the end of the line swallows nothing after it.
        assert_eq!(to_html("end\u{1b}[31"), "end");
        assert_eq!(to_html("\u{1b}"), "");
    }

    #[test]
    fn hostile_parameters_do_not_panic_or_inject() {
        for hostile in [
            "\u{1b}[38;5m",
            "\u{1b}[38;2;1m",
            "\u{1b}[99999999999;38;5;99999mx",
            "\u{1b}[;;;;m\"><img src=x onerror=alert(1)>",
            "\u{1b}[48;2;300;300;300mz",
        ] {
            let html = to_html(hostile);
            assert!(!html.contains("<img"), "{html}");
            assert!(!html.contains("\"><"), "{html}");
        }
        assert_eq!(
            to_html("\u{1b}[48;2;300;300;300mz"),
            "<span style=\"background-color:#ffffff;\">z</span>"
        );
    }

    #[test]
    fn a_carriage_return_keeps_the_last_rewrite() {
        assert_eq!(to_html("10%\r50%\r100%"), "100%");
        assert_eq!(to_html("line\r"), "line");
        assert_eq!(strip("\u{1b}[1mbold\u{1b}[0m\r"), "bold");
    }
}
