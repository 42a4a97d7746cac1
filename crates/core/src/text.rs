//! Text that came from an instance (a script's stderr, the probe's error, the GPU's name) is
//! data, not markup: a compromised or confused instance must not be able to move the cursor of
//! whoever runs `nbfleet ls`, or post links and mentions into Slack. [`plain`] is applied when
//! such text is stored and again when the CLI prints it; [`slack_escape`] to all text nbfleet
//! sends to Slack.

/// `s` without terminal control: escape sequences (`ESC [ … final`, `ESC ] … BEL/ST`, and
/// two-byte `ESC x`) and every other control character removed, newlines and tabs kept; and
/// without the Unicode bidirectional controls that make text read differently from what it is.
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (a title, a hyperlink): up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `s` as Slack's text field shows it literally: `&`, `<` and `>` escaped, so that nothing in
/// it becomes a link, a mention or `<!channel>`.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_controls_are_removed_and_lines_kept() {
        let hostile = "error: \u{1b}[2J\u{1b}[1;31mdisk full\u{1b}[0m\r\n\u{1b}]0;pwned\u{7}next\tline\u{8}\u{0}\u{1b}]8;;http://evil\u{1b}\\x\u{1b}c";
        assert_eq!(plain(hostile), "error: disk full\nnext\tlinex");
        assert_eq!(plain("rm \u{202e}txt.exe"), "rm txt.exe");
        assert_eq!(plain("CUDA 12.4 — ok"), "CUDA 12.4 — ok");
    }

    #[test]
    fn slack_text_cannot_make_links_or_mentions() {
        assert_eq!(
            slack_escape("<!channel> <https://evil|click> a&b"),
            "&lt;!channel&gt; &lt;https://evil|click&gt; a&amp;b"
        );
    }
}
