//! Plivo XML, the answer a call's answer URL gives: what to say, and then
//! to hang up.

/// `<Response><Speak language="..">text</Speak>[<Hangup/>]</Response>`.
pub fn speak(language: &str, text: &str, hang_up: bool) -> String {
    format!(
        "<Response><Speak language=\"{}\">{}</Speak>{}</Response>",
        escape(language),
        escape(text),
        if hang_up { "<Hangup/>" } else { "" }
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speak_escapes_text_and_attributes() {
        assert_eq!(
            speak("en-US", "Tom & \"Jerry\" <3", true),
            "<Response><Speak language=\"en-US\">Tom &amp; &quot;Jerry&quot; &lt;3</Speak><Hangup/></Response>"
        );
    }
}
