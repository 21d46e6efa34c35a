//! How many SMS segments a text takes. A text entirely in the GSM-7
//! alphabet (GSM 03.38) fits 160 septets in one segment, 153 per segment
//! when split (the extension characters take two septets); any other
//! character makes the whole text UCS-2: 70 UTF-16 units, or 67 per
//! segment. Each segment is billed, and a code split across two may arrive
//! in the wrong order.

/// GSM 03.38's basic character set (one septet each), escape excluded.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: two septets each (escape, then the character).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    pub count: usize,
}

pub fn segments(text: &str) -> Segments {
    let septets = text.chars().try_fold(0usize, |sum, c| {
        if GSM7_BASIC.contains(c) {
            Some(sum + 1)
        } else if GSM7_EXTENDED.contains(c) {
            Some(sum + 2)
        } else {
            None
        }
    });
    let (encoding, units, single, part) = match septets {
        Some(septets) => (Encoding::Gsm7, septets, 160, 153),
        None => (Encoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let count = match units {
        0 => 1,
        n if n <= single => 1,
        n => n.div_ceil(part),
    };
    Segments {
        encoding,
        units,
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_texts_fit_160_septets_and_extension_characters_take_two() {
        assert_eq!(segments(&"a".repeat(160)).count, 1);
        assert_eq!(segments(&"a".repeat(161)).count, 2);
        assert_eq!(segments(&"a".repeat(306)).count, 2);
        let euro = segments("€5 [x]");
        assert_eq!((euro.encoding, euro.units), (Encoding::Gsm7, 9));
        assert_eq!(segments("Bestätigungscode gültig").encoding, Encoding::Gsm7);
    }

    #[test]
    fn one_character_outside_gsm7_makes_the_text_ucs2_with_70_units() {
        let s = segments("Tu código");
        assert_eq!((s.encoding, s.units), (Encoding::Ucs2, 9));
        assert_eq!(segments(&"ó".repeat(70)).count, 1);
        assert_eq!(segments(&"ó".repeat(71)).count, 2);
        assert_eq!(segments("😀").units, 2, "a surrogate pair is two units");
        assert_eq!(segments("ç").encoding, Encoding::Ucs2, "only Ç is in GSM-7");
    }
}
